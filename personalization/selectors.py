import datetime
from typing import Any

from django.db.models import Avg, Count, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from config.db import apply_filters
from logs.services import MASK
from personalization.filters import InteractionFilter, UserFilter
from personalization.models import Interaction, Preferences, SkillAssessment, SkillProfile, User
from personalization.registry import profile_summaries, user_data_sources

SUMMARY_DAYS = 30
FAVORITE_THEME_WINDOW = 20
FAVORITE_MIN_RATING = 4
POPULAR_SERVICES = 10


def user_get_by_reference(*, reference: str) -> User | None:
    """An active user named by primary key or by the client application's `external_id`.
    A numeric reference is tried as the id first, then as an external id."""
    if "\x00" in reference or len(reference) > 255:
        return None
    users = User.objects.filter(is_active=True)
    if reference.isascii() and reference.isdigit() and len(reference) < 19:
        by_id = users.filter(pk=int(reference)).first()
        if by_id is not None:
            return by_id
    return users.filter(external_id=reference).first()


def user_list(*, filters: dict[str, Any] | None = None) -> QuerySet[User]:
    return apply_filters(UserFilter, filters, User.objects.order_by("-date_joined", "-id"))


def preferences_get(*, user: User) -> Preferences:
    """The stored preferences, or an unsaved instance holding the defaults."""
    stored = Preferences.objects.filter(user=user).first()
    return stored if stored is not None else Preferences(user=user)


def skill_profile_get(*, user: User) -> SkillProfile:
    stored = SkillProfile.objects.filter(user=user).first()
    return stored if stored is not None else SkillProfile(user=user)


def skill_assessment_list(*, user: User) -> QuerySet[SkillAssessment]:
    return SkillAssessment.objects.filter(user=user).order_by("-assessed_at", "-id")


def interaction_list(
    *, owner: User | None = None, filters: dict[str, Any] | None = None
) -> QuerySet[Interaction]:
    queryset = Interaction.objects.order_by("-occurred_at", "-id")
    if owner is not None:
        queryset = queryset.filter(user=owner)
    return apply_filters(InteractionFilter, filters, queryset)


def interaction_summary(*, user: User, now: datetime.datetime | None = None) -> dict[str, Any]:
    """DESIGN.md §7 `interactions/summary/`, each figure one SQL aggregate:
    popular services (count), average rating by service (rated interactions only),
    engagement per day over the last 30 days (every day listed, zeros included), and
    favorite themes among the user's last 20 interactions rated 4 or more."""
    now = now or timezone.now()
    own = Interaction.objects.filter(user=user)

    popular = list(
        own.values("service")
        .annotate(count=Count("id"))
        .order_by("-count", "service")[:POPULAR_SERVICES]
    )
    ratings = list(
        own.filter(rating__isnull=False)
        .values("service")
        .annotate(average_rating=Avg("rating"), ratings=Count("id"))
        .order_by("service")
    )
    first_day = (now - datetime.timedelta(days=SUMMARY_DAYS - 1)).date()
    start = datetime.datetime.combine(first_day, datetime.time.min, tzinfo=datetime.UTC)
    per_day = dict(
        own.filter(occurred_at__gte=start, occurred_at__lte=now)
        .annotate(day=TruncDate("occurred_at", tzinfo=datetime.UTC))
        .values("day")
        .annotate(count=Count("id"))
        .values_list("day", "count")
    )
    days = [first_day + datetime.timedelta(days=offset) for offset in range(SUMMARY_DAYS)]
    recent_liked = own.filter(rating__gte=FAVORITE_MIN_RATING).order_by("-occurred_at", "-id")[
        :FAVORITE_THEME_WINDOW
    ]
    favorites = list(
        Interaction.objects.filter(pk__in=recent_liked.values("pk"), theme__isnull=False)
        .exclude(theme="")
        .values("theme")
        .annotate(count=Count("id"))
        .order_by("-count", "theme")
    )
    return {
        "popular_services": popular,
        "average_rating_by_service": [
            {**row, "average_rating": round(float(row["average_rating"]), 4)} for row in ratings
        ],
        "engagement_per_day": [
            {"date": day.isoformat(), "count": per_day.get(day, 0)} for day in days
        ],
        "favorite_themes": favorites,
    }


def profile_summary(*, user: User) -> dict[str, Any]:
    """The `me/` summary: preferences, skills, and what higher apps contribute."""
    skills = skill_profile_get(user=user)
    summary: dict[str, Any] = {
        "skills": {
            "ratings": skills.skill_ratings,
            "weaknesses": skills.weaknesses,
            "learning_velocity": skills.learning_velocity,
        },
    }
    for contribution in profile_summaries():
        summary[contribution.name] = contribution.summarize(user)
    return summary


def user_data_export(*, user: User) -> dict[str, Any]:
    """Every row Attune holds about the user, by model label (DESIGN.md §7 `me/export/`)."""
    export: dict[str, Any] = {"exported_at": timezone.now().isoformat(), "user_id": user.pk}
    data: dict[str, list[dict[str, Any]]] = {}
    for source in user_data_sources():
        rows = list(source.rows(user).values())
        for row in rows:
            for name in source.secret_fields:
                if name in row:
                    row[name] = MASK
        data.setdefault(source.label, []).extend(rows)
    export["data"] = data
    return export
