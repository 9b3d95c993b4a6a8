import datetime

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from logs.selectors import audit_event_list, request_log_list, request_log_stats
from tests.logs.factories import PersonalizationLogFactory, TranslationLogFactory

# A fixed data set: chapter "a" has 10 requests, chapter "b" has 4.
CHAPTER_A_TIMES = [100, 120, 90, 300, 250, 80, 110, 105, 95, 1000]
CHAPTER_A_STATUS = ["SUCCESS"] * 7 + ["FAILURE", "FAILURE", "TIMEOUT"]
CHAPTER_B_TIMES = [10, 20, 30, 40]
CHAPTER_B_STATUS = ["SUCCESS", "TIMEOUT", "SUCCESS", "SUCCESS"]


@pytest.fixture
def fixed_logs(user):
    for ms, status in zip(CHAPTER_A_TIMES, CHAPTER_A_STATUS, strict=True):
        PersonalizationLogFactory(user=user, chapter_id="a", response_time_ms=ms, status=status)
    for ms, status in zip(CHAPTER_B_TIMES, CHAPTER_B_STATUS, strict=True):
        PersonalizationLogFactory(user=user, chapter_id="b", response_time_ms=ms, status=status)


def test_request_log_stats__hand_computed(fixed_logs):
    rows = {row["chapter_id"]: row for row in request_log_stats(kind="personalization")}

    assert rows["a"]["count"] == 10
    assert rows["a"]["failure_rate"] == pytest.approx(0.2)
    assert rows["a"]["timeout_rate"] == pytest.approx(0.1)
    # sorted a: 80 90 95 100 105 110 120 250 300 1000; median = (105 + 110) / 2
    assert rows["a"]["p50_response_time_ms"] == pytest.approx(107.5)
    # p95 position 0.95·9 = 8.55 → 300 + 0.55·(1000 − 300) = 685
    assert rows["a"]["p95_response_time_ms"] == pytest.approx(685.0)

    assert rows["b"]["count"] == 4
    assert rows["b"]["failure_rate"] == pytest.approx(0.0)
    assert rows["b"]["timeout_rate"] == pytest.approx(0.25)
    assert rows["b"]["p50_response_time_ms"] == pytest.approx(25.0)
    assert rows["b"]["p95_response_time_ms"] == pytest.approx(38.5)


def test_request_log_stats__percentiles_match_numpy(user):
    rng = np.random.default_rng(7)
    times = rng.integers(1, 5000, size=137)
    for ms in times:
        TranslationLogFactory(user=user, chapter_id="c", response_time_ms=int(ms))
    (row,) = request_log_stats(kind="translation")
    assert row["p50_response_time_ms"] == pytest.approx(np.percentile(times, 50))
    assert row["p95_response_time_ms"] == pytest.approx(np.percentile(times, 95))


def test_request_log_stats__one_query(fixed_logs, django_assert_num_queries):
    with django_assert_num_queries(1):
        request_log_stats(kind="personalization")


def test_request_log_stats__since_filter(user):
    PersonalizationLogFactory(
        user=user, chapter_id="old", request_timestamp=timezone.now() - datetime.timedelta(days=3)
    )
    PersonalizationLogFactory(user=user, chapter_id="new")
    since = (timezone.now() - datetime.timedelta(days=1)).isoformat()
    rows = request_log_stats(kind="personalization", filters={"since": since})
    assert [row["chapter_id"] for row in rows] == ["new"]


def test_request_log_stats__invalid_filter__validation_error(user):
    with pytest.raises(ValidationError) as excinfo:
        request_log_stats(kind="personalization", filters={"since": "yesterday"})
    assert "since" in excinfo.value.message_dict


def test_request_log_list__owner_only_newest_first(user, other_user):
    older = PersonalizationLogFactory(
        user=user, request_timestamp=timezone.now() - datetime.timedelta(hours=1)
    )
    newer = PersonalizationLogFactory(user=user)
    PersonalizationLogFactory(user=other_user)
    assert list(request_log_list(kind="personalization", owner=user)) == [newer, older]
    assert request_log_list(kind="personalization").count() == 3


def test_audit_event_list__filter_by_action(user):
    from django.db import transaction

    from logs.models import AuditEvent
    from logs.services import audit_event_record

    with transaction.atomic():
        audit_event_record(actor=user, action=AuditEvent.Action.PROFILE_UPDATED, target=user)
        audit_event_record(actor=user, action=AuditEvent.Action.USER_CREATED, target=user)
    events = audit_event_list(filters={"action": ["USER_CREATED"]})
    assert [event.action for event in events] == ["USER_CREATED"]
