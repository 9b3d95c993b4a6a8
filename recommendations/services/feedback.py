"""What the learner did with a recommendation: accept, decline, complete, or let it expire."""

import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from config.errors import ConflictError
from outcomes.models import SCORE_FIELDS
from outcomes.services.ingest import RESERVED_EVENT_ID_PREFIX, outcome_record_many
from recommendations.models import Recommendation

Status = Recommendation.Status
EXPIRE_AFTER_DAYS = 7
# The outcome recorded on completion is `attune:recommendation:<pk>`: one per
# recommendation, in the reserved id space that clients may not write to (see ingest).
COMPLETION_EVENT_PREFIX = f"{RESERVED_EVENT_ID_PREFIX}recommendation:"

ALLOWED: dict[str, set[str]] = {
    Status.PENDING: {Status.ACCEPTED, Status.DECLINED, Status.COMPLETED, Status.EXPIRED},
    Status.ACCEPTED: {Status.DECLINED, Status.COMPLETED},
    Status.DECLINED: set(),
    Status.COMPLETED: set(),
    Status.EXPIRED: set(),
}


def _locked(recommendation: Recommendation, target: str) -> Recommendation:
    locked = (
        Recommendation.objects.select_for_update().select_related("item").get(pk=recommendation.pk)
    )
    if target not in ALLOWED[locked.status]:
        raise ConflictError(
            f"This recommendation is {locked.status}; it cannot become {target}.",
            code="illegal_transition",
        )
    return locked


@transaction.atomic
def recommendation_accept(*, recommendation: Recommendation) -> Recommendation:
    rec = _locked(recommendation, Status.ACCEPTED)
    now = timezone.now()
    rec.status, rec.responded_at, rec.applied_at = Status.ACCEPTED, now, now
    rec.save(update_fields=["status", "responded_at", "applied_at", "updated_at"])
    return rec


@transaction.atomic
def recommendation_decline(*, recommendation: Recommendation, reason: str = "") -> Recommendation:
    rec = _locked(recommendation, Status.DECLINED)
    rec.status, rec.responded_at, rec.feedback = Status.DECLINED, timezone.now(), reason
    rec.save(update_fields=["status", "responded_at", "feedback", "updated_at"])
    return rec


@transaction.atomic
def recommendation_complete(
    *,
    recommendation: Recommendation,
    effectiveness: float | None = None,
    scores: dict[str, float] | None = None,
    feedback: str = "",
) -> Recommendation:
    """Complete it and record a CONTENT_ENGAGED outcome linked to its decision, so bandits
    and effectiveness windows learn from it. Without scores, the effectiveness is the
    engagement score. The outcome's event id is COMPLETION_EVENT_PREFIX + the
    recommendation's id, in the reserved space that clients may not write to."""
    scores = {k: v for k, v in (scores or {}).items() if k in SCORE_FIELDS and v is not None}
    if not scores and effectiveness is not None:
        scores = {"engagement_score": effectiveness}
    if not scores:
        raise ValidationError(
            {"effectiveness": "Give the effectiveness (0–1) or at least one score to complete it."}
        )
    given = {"effectiveness": effectiveness, **scores}
    for name, value in given.items():
        if value is not None and not 0.0 <= value <= 1.0:
            raise ValidationError({name: "Must be between 0 and 1."})
    rec = _locked(recommendation, Status.COMPLETED)
    now = timezone.now()
    item: dict[str, Any] = {
        "event_id": f"{COMPLETION_EVENT_PREFIX}{rec.pk}",
        "outcome_type": "CONTENT_ENGAGED",
        "occurred_at": now,
        "content_type": rec.item.content_type,
        "difficulty_level": rec.item.difficulty,
        **scores,
    }
    if rec.decision_id is not None:
        item["decision"] = rec.decision_id
    else:
        item["context"] = rec.context
    outcome_record_many(user=rec.user, items=[item], single=True, internal=True)
    rec.status, rec.completed_at = Status.COMPLETED, now
    rec.responded_at = rec.responded_at or now
    rec.effectiveness = effectiveness
    rec.feedback = feedback or rec.feedback
    rec.save(
        update_fields=[
            "status",
            "completed_at",
            "responded_at",
            "effectiveness",
            "feedback",
            "updated_at",
        ]
    )
    return rec


def recommendations_expire_stale(*, now: datetime.datetime | None = None) -> int:
    """PENDING for more than 7 days → EXPIRED, in one UPDATE. Idempotent."""
    cutoff = (now or timezone.now()) - datetime.timedelta(days=EXPIRE_AFTER_DAYS)
    return Recommendation.objects.filter(status=Status.PENDING, created_at__lt=cutoff).update(
        status=Status.EXPIRED, updated_at=timezone.now()
    )
