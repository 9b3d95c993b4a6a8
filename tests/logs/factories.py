import datetime

import factory
from django.utils import timezone

from logs.models import PersonalizationLog, RequestLog, TranslationLog
from tests.personalization.factories import UserFactory


class PersonalizationLogFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PersonalizationLog

    user = factory.SubFactory(UserFactory)
    chapter_id = "chapter-1"
    request_timestamp = factory.LazyFunction(timezone.now)
    response_time_ms = 120
    status = RequestLog.Status.SUCCESS


class TranslationLogFactory(PersonalizationLogFactory):
    class Meta:
        model = TranslationLog

    target_language = "de"


def days_ago(days: float) -> datetime.datetime:
    return timezone.now() - datetime.timedelta(days=days)
