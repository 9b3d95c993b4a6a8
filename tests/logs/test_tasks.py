import datetime
from io import StringIO

from django.core.management import call_command
from django.utils import timezone

from config.celery_app import beat_schedule
from logs.models import PersonalizationLog
from logs.tasks import purge_expired_logs
from tests.logs.factories import PersonalizationLogFactory


def _old_and_new(user):
    PersonalizationLogFactory(
        user=user, request_timestamp=timezone.now() - datetime.timedelta(days=120)
    )
    PersonalizationLogFactory(user=user)


def test_purge_task__deletes_expired(user):
    _old_and_new(user)
    result = purge_expired_logs.apply()
    assert result.successful()
    assert result.get() == {"personalizationlog": 1, "translationlog": 0, "decisions": 0}
    assert PersonalizationLog.objects.count() == 1


def test_purge_task__on_beat_schedule_daily():
    entry = beat_schedule()["logs.purge_expired_logs"]
    assert entry["task"] == purge_expired_logs.name == "logs.purge_expired_logs"
    assert entry["schedule"].hour == {3}


def test_purge_task__acks_late_and_retries_on_transient_errors():
    assert purge_expired_logs.acks_late is True
    assert purge_expired_logs.reject_on_worker_lost is True
    assert purge_expired_logs.max_retries == 5


def test_purge_command__twin_of_task(user):
    _old_and_new(user)
    out = StringIO()
    call_command("purge_expired_logs", stdout=out)
    assert "personalizationlog: 1 deleted" in out.getvalue()
    assert PersonalizationLog.objects.count() == 1
