"""Skill assessments and the SkillProfile derived from them."""

import datetime

from django.db import transaction
from django.utils import timezone

from personalization import ratings
from personalization.models import SkillAssessment, SkillProfile, User


@transaction.atomic
def skill_assessment_record(
    *, user: User, skill: str, score: float, assessed_at: datetime.datetime | None = None
) -> SkillProfile:
    """Store one assessment and rebuild the user's SkillProfile from the whole history."""
    assessment = SkillAssessment(
        user=user, skill=skill, score=score, assessed_at=assessed_at or timezone.now()
    )
    assessment.full_clean()
    assessment.save()
    return skill_profile_recompute(user=user)


@transaction.atomic
def skill_profile_recompute(*, user: User, now: datetime.datetime | None = None) -> SkillProfile:
    """Derived from the raw assessments, so a rerun fixes any drift. The profile row is
    locked so that concurrent assessments of one user serialise here."""
    profile, _created = SkillProfile.objects.select_for_update().get_or_create(user=user)
    rows = list(
        SkillAssessment.objects.filter(user=user)
        .order_by("skill", "assessed_at", "id")
        .values_list("skill", "score", "assessed_at")
    )
    skills, scores, moments = zip(*rows, strict=True) if rows else ((), (), ())
    histories = ratings.histories_from_arrays(
        skills, scores, [moment.timestamp() for moment in moments]
    )
    summary = ratings.summarize(histories, now=(now or timezone.now()).timestamp())
    profile.skill_ratings = {skill: round(value, 6) for skill, value in summary.ratings.items()}
    profile.weaknesses = summary.weaknesses
    profile.learning_velocity = summary.learning_velocity
    profile.save()
    return profile
