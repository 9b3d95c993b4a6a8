"""Learning paths: built from the learner's weakest skills, completed item by item."""

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from config.errors import ConflictError, NotFoundError
from personalization.selectors import skill_profile_get
from recommendations.models import ContentItem, LearningPath, LearningPathItem, LearningPathStage

Status = LearningPath.Status
StageStatus = LearningPathStage.Status

MAX_SKILLS = 3
ITEMS_PER_STAGE = 6
# (title, difficulties) of the three stages, in order.
STAGES = (
    ("Foundation", (1, 2)),
    ("Practice", (3,)),
    ("Mastery", (4, 5)),
)
ALLOWED: dict[str, set[str]] = {
    Status.ACTIVE: {Status.PAUSED, Status.ABANDONED},
    Status.PAUSED: {Status.ACTIVE, Status.ABANDONED},
    Status.COMPLETED: set(),
    Status.ABANDONED: set(),
}


def _skills_for(user: Any, skills: list[str] | None) -> list[str]:
    if skills:
        return list(dict.fromkeys(skills))[:MAX_SKILLS]
    profile = skill_profile_get(user=user)
    if profile.weaknesses:
        return profile.weaknesses[:MAX_SKILLS]
    ratings = sorted(profile.skill_ratings.items(), key=lambda kv: (kv[1], kv[0]))
    if ratings:
        return [skill for skill, _ in ratings[:MAX_SKILLS]]
    raise ValidationError(
        {"skills": "No skill profile yet: name the skills to build the path from."}
    )


@transaction.atomic
def learning_path_create(*, user: Any, goal: str, skills: list[str] | None = None) -> LearningPath:
    """Three stages — foundation (difficulty ≤ 2), practice (3), mastery (≥ 4) — over the
    user's weakest skills (or those given), items ordered by skill, difficulty, duration."""
    chosen = _skills_for(user, skills)
    items = list(
        ContentItem.objects.filter(is_active=True, skill__in=chosen).order_by(
            "difficulty", "duration_minutes", "key"
        )
    )
    rank = {skill: index for index, skill in enumerate(chosen)}
    items.sort(key=lambda i: (rank[i.skill], i.difficulty, i.duration_minutes, i.key))
    if not items:
        raise ValidationError({"skills": f"No active content for {', '.join(chosen)}."})
    if LearningPath.objects.filter(user=user, goal=goal, status=Status.ACTIVE).exists():
        raise ConflictError(f"There is already an active path for the goal {goal!r}.")
    path = LearningPath(user=user, goal=goal, title=goal[:200])
    path.full_clean(validate_constraints=False)
    try:
        with transaction.atomic():
            path.save()
    except IntegrityError as exc:  # a concurrent request created it first
        raise ConflictError(f"There is already an active path for the goal {goal!r}.") from exc
    for order, (title, difficulties) in enumerate(STAGES, start=1):
        stage = LearningPathStage.objects.create(path=path, title=title, order=order)
        chosen_items = [i for i in items if i.difficulty in difficulties][:ITEMS_PER_STAGE]
        LearningPathItem.objects.bulk_create(
            LearningPathItem(stage=stage, item=item, order=position)
            for position, item in enumerate(chosen_items, start=1)
        )
    return path


def _refresh_progress(path: LearningPath) -> None:
    """Progress, stage statuses and completion, derived from the done flags in SQL."""
    now = timezone.now()
    stages = LearningPathStage.objects.filter(path=path).annotate(
        total=Count("items"), done=Count("items", filter=Q(items__done=True))
    )
    total = done = 0
    for stage in stages:
        total, done = total + stage.total, done + stage.done
        status = (
            StageStatus.COMPLETED
            if stage.total and stage.done == stage.total
            else StageStatus.IN_PROGRESS
            if stage.done
            else StageStatus.PENDING
        )
        if stage.status != status:
            LearningPathStage.objects.filter(pk=stage.pk).update(status=status, updated_at=now)
    path.progress = done / total if total else 0.0
    if total and done == total:
        path.status, path.completed_at = Status.COMPLETED, now
    path.save(update_fields=["progress", "status", "completed_at", "updated_at"])


def _path_locked(path: LearningPath, *, deleting: bool = False) -> LearningPath:
    """The path's row, locked before any of its stages or items: every writer of a path locks
    in this one order (path, then stages and items), so none deadlocks another. A path deleted
    by a concurrent request is gone once the lock is granted: 404."""
    locked = LearningPath.objects.select_for_update(no_key=not deleting).filter(pk=path.pk).first()
    if locked is None:
        raise NotFoundError("This learning path no longer exists.")
    return locked


@transaction.atomic
def learning_path_item_complete(*, path: LearningPath, path_item_id: int) -> LearningPath:
    path = _path_locked(path)
    if path.status != Status.ACTIVE:
        raise ConflictError(f"This path is {path.status}; resume it to complete items.")
    item = LearningPathItem.objects.filter(stage__path=path, pk=path_item_id).first()
    if item is None:
        raise NotFoundError(f"This path has no item {path_item_id}.")
    if item.done:
        raise ConflictError("This item is already done.", code="already_done")
    item.done, item.done_at = True, timezone.now()
    item.save(update_fields=["done", "done_at", "updated_at"])
    _refresh_progress(path)
    return path


@transaction.atomic
def learning_path_set_status(*, path: LearningPath, status: str) -> LearningPath:
    path = _path_locked(path)
    if status not in ALLOWED[path.status]:
        raise ConflictError(
            f"This path is {path.status}; it cannot become {status}.", code="illegal_transition"
        )
    path.status = status
    try:
        with transaction.atomic():
            path.save(update_fields=["status", "updated_at"])
    except IntegrityError as exc:
        raise ConflictError(
            f"Another path for the goal {path.goal!r} is active; pause or abandon it first."
        ) from exc
    return path


@transaction.atomic
def learning_path_delete(*, path: LearningPath) -> None:
    """Deletes the path with its stages and items; the path is locked first, since the
    cascade deletes the items before the path row."""
    _path_locked(path, deleting=True).delete()
