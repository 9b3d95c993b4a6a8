import datetime
from typing import Any

from django.db.models import Avg, CharField, Count, Q, QuerySet
from django.db.models.functions import Cast, TruncDate
from django.utils import timezone

from config.db import apply_filters
from logs.models import AuditEvent
from logs.services import MASK
from personalization.filters import InteractionFilter, UserFilter
from personalization.models import Interaction, Preferences, SkillAssessment, SkillProfile, User
from personalization.registry import profile_summaries, user_data_sources
from personalization.roles import (
    act_for_users_permission,
    acts_for_users_known,
    holds_act_for_users,
)

SUMMARY_DAYS = 30
FAVORITE_THEME_WINDOW = 20
FAVORITE_MIN_RATING = 4
POPULAR_SERVICES = 10


ID_PREFIX = "id:"
MAX_REFERENCE_LENGTH = 255


def reference_filter(reference: str) -> dict[str, Any] | None:
    """The lookup a reference names (DESIGN.md §7): `id:<attune id>` is Attune's primary key,
    anything else the client application's `external_id` — a bare number too, so an external
    id "2" never resolves to Attune user 2. None: it can name nobody."""
    if "\x00" in reference or len(reference) > MAX_REFERENCE_LENGTH:
        return None
    if reference.startswith(ID_PREFIX):
        number = reference[len(ID_PREFIX) :]
        if not (number.isascii() and number.isdigit() and len(number) < 19):
            return None
        return {"pk": int(number)}
    return {"external_id": reference}


def users_by_reference() -> QuerySet[User]:
    """The users a reference may find (active ones, and merged ones to follow to their
    survivor), each with whether it is a service account."""
    return User.objects.filter(Q(is_active=True) | Q(merged_into__isnull=False)).annotate(
        holds_act_for_users=holds_act_for_users()
    )


def user_get_by_reference(*, reference: str, follow_merges: bool = True) -> User | None:
    """An active user named the way reference_filter says. The same read says whether the
    user is a service account (acts_for_users answers from it, not from the cache)."""
    lookup = reference_filter(reference)
    if lookup is None:
        return None
    users = users_by_reference()
    found = users.filter(**lookup).first()
    if not follow_merges:
        return _role_known(found)
    # A learner merged into another (users/{id}/merge/) is found as the survivor.
    for _ in range(5):
        if found is None or found.merged_into is None:
            break
        found = users.filter(pk=found.merged_into).first()
    return _role_known(found) if found is not None and found.is_active else None


def _role_known(user: User | None) -> User | None:
    if user is not None:
        acts_for_users_known(user, holds=bool(getattr(user, "holds_act_for_users", False)))
    return user


def learners(queryset: QuerySet[User]) -> QuerySet[User]:
    """Only learners (DESIGN.md §3): neither staff, superusers, nor holders of
    personalization.act_for_users (directly or through a group)."""
    act_for_users = act_for_users_permission()
    return (
        queryset.filter(is_staff=False, is_superuser=False)
        .exclude(pk__in=User.objects.filter(user_permissions__in=act_for_users).values("pk"))
        .exclude(pk__in=User.objects.filter(groups__permissions__in=act_for_users).values("pk"))
    )


def user_list(
    *, filters: dict[str, Any] | None = None, learners_only: bool = False
) -> QuerySet[User]:
    """Users newest first; `learners_only` for service accounts, who see learners only."""
    queryset = User.objects.order_by("-date_joined", "-id")
    if learners_only:
        queryset = learners(queryset)
    return apply_filters(UserFilter, filters, queryset)


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


def user_audit_about(*, user: User) -> Q:
    """Audit events about the user: those whose target is the user or one of the rows held
    about them (every registered source). The row ids stay in SQL subqueries, so a user with
    100,000 rows of one kind needs no bind parameter per row."""
    about = Q(target_type=User._meta.label_lower, target_id=str(user.pk))
    for source in user_data_sources():
        if source.model is User or source.model is AuditEvent:
            continue
        row_ids = source.rows(user).order_by().annotate(pk_text=Cast("pk", CharField()))
        about |= Q(target_type=source.label, target_id__in=row_ids.values("pk_text"))
    return about


def user_data_export(*, user: User) -> dict[str, Any]:
    """Every row Attune holds about the user, by model label (DESIGN.md §7 `me/export/`),
    audit events included: those the user did and those about the user or their rows."""
    export: dict[str, Any] = {"exported_at": timezone.now().isoformat(), "user_id": user.pk}
    data: dict[str, list[dict[str, Any]]] = {}
    for source in user_data_sources():
        rows = list(source.rows(user).values())
        for row in rows:
            for name in source.secret_fields:
                if name in row:
                    row[name] = MASK
        data.setdefault(source.label, []).extend(rows)
    events = data.setdefault(AuditEvent._meta.label_lower, [])
    seen = {row["id"] for row in events}
    about = AuditEvent.objects.filter(user_audit_about(user=user)).order_by("pk").values()
    events.extend(dict(row) for row in about if row["id"] not in seen)
    events.sort(key=lambda row: row["id"])
    export["data"] = data
    return export
