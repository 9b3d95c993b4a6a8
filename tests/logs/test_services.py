import datetime

import pytest
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from logs.models import AuditEvent, PersonalizationLog, TranslationLog
from logs.services import (
    MASK,
    audit_event_record,
    changes_between,
    model_snapshot,
    request_logs_purge_expired,
)
from tests.logs.factories import PersonalizationLogFactory, TranslationLogFactory


def test_changes_between__only_changed_fields():
    before = {"a": 1, "b": "x", "c": None}
    after = {"a": 1, "b": "y", "d": 4}
    assert changes_between(before, after) == {
        "b": {"old": "x", "new": "y"},
        "d": {"old": None, "new": 4},
    }


def test_model_snapshot__password_masked(user):
    snapshot = model_snapshot(user)
    assert snapshot["password"] == MASK
    assert snapshot["username"] == user.username
    assert "created_at" not in snapshot


@pytest.mark.django_db(transaction=True)
def test_audit_event_record__outside_transaction__refused(user):
    with pytest.raises(RuntimeError, match="inside the transaction"):
        audit_event_record(actor=user, action=AuditEvent.Action.PROFILE_UPDATED, target=user)
    assert AuditEvent.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_audit_event_record__caller_rolls_back__event_rolled_back(user):
    class Boom(Exception):
        pass

    def change_then_fail():
        with transaction.atomic():
            audit_event_record(actor=user, action=AuditEvent.Action.PROFILE_UPDATED, target=user)
            raise Boom

    with pytest.raises(Boom):
        change_then_fail()
    assert AuditEvent.objects.count() == 0


def test_audit_event_record__target_and_changes_stored(user, staff_user):
    event = audit_event_record(
        actor=staff_user,
        action=AuditEvent.Action.PROFILE_UPDATED,
        target=user,
        changes={"display_name": {"old": "A", "new": "B"}},
    )
    event.refresh_from_db()
    assert event.actor == staff_user
    assert event.target_type == "personalization.user"
    assert event.target_id == str(user.pk)
    assert event.changes == {"display_name": {"old": "A", "new": "B"}}


def test_audit_event_record__unknown_action__refused(user):
    with pytest.raises(ValueError, match="Unknown audit action"):
        audit_event_record(actor=user, action="NOT_AN_ACTION")


@override_settings(LOG_RETENTION_DAYS=90)
def test_purge__deletes_exactly_rows_older_than_retention(user):
    now = timezone.now()
    keep_edge = now - datetime.timedelta(days=90) + datetime.timedelta(seconds=1)
    drop_edge = now - datetime.timedelta(days=90) - datetime.timedelta(seconds=1)
    kept = [
        PersonalizationLogFactory(user=user, request_timestamp=now),
        PersonalizationLogFactory(user=user, request_timestamp=keep_edge),
        TranslationLogFactory(user=user, request_timestamp=keep_edge),
    ]
    PersonalizationLogFactory(user=user, request_timestamp=drop_edge)
    PersonalizationLogFactory(user=user, request_timestamp=now - datetime.timedelta(days=400))
    TranslationLogFactory(user=user, request_timestamp=drop_edge)

    deleted = request_logs_purge_expired(now=now)

    assert deleted == {"personalizationlog": 2, "translationlog": 1}
    assert set(PersonalizationLog.objects.values_list("pk", flat=True)) == {
        kept[0].pk,
        kept[1].pk,
    }
    assert set(TranslationLog.objects.values_list("pk", flat=True)) == {kept[2].pk}
    event = AuditEvent.objects.get(action=AuditEvent.Action.REQUEST_LOGS_PURGED)
    assert event.changes["deleted"]["new"] == deleted
    assert event.actor is None


def test_purge__rerun__deletes_nothing_more(user):
    PersonalizationLogFactory(
        user=user, request_timestamp=timezone.now() - datetime.timedelta(days=91)
    )
    assert request_logs_purge_expired() == {"personalizationlog": 1, "translationlog": 0}
    assert request_logs_purge_expired() == {"personalizationlog": 0, "translationlog": 0}
    assert AuditEvent.objects.filter(action=AuditEvent.Action.REQUEST_LOGS_PURGED).count() == 1


@override_settings(LOG_RETENTION_DAYS=7)
def test_purge__retention_from_settings(user):
    PersonalizationLogFactory(
        user=user, request_timestamp=timezone.now() - datetime.timedelta(days=8)
    )
    PersonalizationLogFactory(
        user=user, request_timestamp=timezone.now() - datetime.timedelta(days=6)
    )
    assert request_logs_purge_expired()["personalizationlog"] == 1
    assert PersonalizationLog.objects.count() == 1


def test_model_snapshot__only_credentials_masked(staff_user, db):
    from rest_framework.authtoken.models import Token

    from tests.experiments.factories import load_catalog

    load_catalog()
    from experiments.models import Strategy

    strategy = Strategy.objects.get(context="MISSION", key="balanced")
    assert model_snapshot(strategy)["key"] == "balanced"
    token = Token.objects.create(user=staff_user)
    assert model_snapshot(token)["key"] == MASK
