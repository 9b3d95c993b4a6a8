import datetime

import pytest

from personalization.models import Preferences
from personalization.selectors import (
    interaction_summary,
    preferences_get,
    user_get_by_reference,
)
from tests.personalization.factories import InteractionFactory, UserFactory

NOW = datetime.datetime(2026, 6, 15, 12, 0, tzinfo=datetime.UTC)


def _at(days_ago: int) -> datetime.datetime:
    return NOW - datetime.timedelta(days=days_ago)


@pytest.fixture
def fixed_interactions(user):
    rows = [
        # service, type, theme, rating, days ago
        ("library", "READING", "space", 5, 0),
        ("library", "READING", "history", 4, 1),
        ("library", "VIEW", None, None, 1),
        ("tutor", "CHAT", "math", 2, 2),
        ("tutor", "CHAT", "math", 3, 40),
        ("forum", "SHARE", "space", 4, 5),
    ]
    for service, kind, theme, rating, days in rows:
        InteractionFactory(
            user=user, service=service, type=kind, theme=theme, rating=rating, occurred_at=_at(days)
        )
    InteractionFactory(service="library", rating=1, occurred_at=_at(0))  # another user's


def test_summary__hand_computed(user, fixed_interactions):
    summary = interaction_summary(user=user, now=NOW)

    assert summary["popular_services"] == [
        {"service": "library", "count": 3},
        {"service": "tutor", "count": 2},
        {"service": "forum", "count": 1},
    ]
    assert summary["average_rating_by_service"] == [
        {"service": "forum", "average_rating": 4.0, "ratings": 1},
        {"service": "library", "average_rating": 4.5, "ratings": 2},
        {"service": "tutor", "average_rating": 2.5, "ratings": 2},
    ]
    per_day = summary["engagement_per_day"]
    assert len(per_day) == 30
    assert per_day[0]["date"] == "2026-05-17"
    assert per_day[-1] == {"date": "2026-06-15", "count": 1}
    assert {row["date"]: row["count"] for row in per_day if row["count"]} == {
        "2026-06-15": 1,
        "2026-06-14": 2,
        "2026-06-13": 1,
        "2026-06-10": 1,
    }
    assert summary["favorite_themes"] == [
        {"theme": "space", "count": 2},
        {"theme": "history", "count": 1},
    ]


def test_summary__favorite_themes_from_last_20_liked_only(user):
    for day in range(5):
        InteractionFactory(user=user, theme="old", rating=5, occurred_at=_at(30 + day))
    for day in range(20):
        InteractionFactory(user=user, theme="new", rating=4, occurred_at=_at(day))
    InteractionFactory(user=user, theme="disliked", rating=3, occurred_at=_at(0))
    summary = interaction_summary(user=user, now=NOW)
    assert summary["favorite_themes"] == [{"theme": "new", "count": 20}]


def test_summary__constant_query_count(user, fixed_interactions, django_assert_num_queries):
    with django_assert_num_queries(4):
        interaction_summary(user=user, now=NOW)


def test_preferences_get__defaults_unsaved(user):
    prefs = preferences_get(user=user)
    assert prefs.pk is None
    assert prefs.daily_minutes == 30
    assert not Preferences.objects.exists()


def test_user_get_by_reference__id_prefix_or_external_id(db):
    numeric_external = UserFactory(external_id="12345")
    by_id = UserFactory()
    assert user_get_by_reference(reference=f"id:{by_id.pk}") == by_id
    assert user_get_by_reference(reference="12345") == numeric_external
    assert user_get_by_reference(reference="9" * 40) is None
    assert user_get_by_reference(reference="id:") is None
    assert user_get_by_reference(reference="id:x1") is None
    assert user_get_by_reference(reference="id:" + "9" * 40) is None


def test_user_get_by_reference__bare_number__is_an_external_id_never_an_id(db):
    """DESIGN.md §10: a numeric external_id "2" once resolved to Attune user 2."""
    first = UserFactory()
    named_like_first = UserFactory(external_id=str(first.pk))
    assert user_get_by_reference(reference=str(first.pk)) == named_like_first
    nobody = UserFactory()
    assert user_get_by_reference(reference=str(nobody.pk + 1000)) is None
