"""Seed steps of the recommendations app."""

import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from personalization.models import User
from personalization.seeding import SeedContext
from recommendations.models import LearningPath, LearningPathItem, Recommendation
from recommendations.services import feedback, paths
from recommendations.services.catalog import content_catalog_load
from recommendations.services.generation import recommendations_generate

DEMO_GOAL = "Build a line-following robot"


def seed_content_catalog(context: SeedContext) -> str:
    created, present = content_catalog_load(path=settings.BASE_DIR / "fixtures" / "content.json")
    return f"content catalog: {created} created, {present} already there"


@transaction.atomic
def seed_demo_recommendations(context: SeedContext) -> str:
    """Five recommendations in different states and an active three-stage path, some of
    it done."""
    demo = User.objects.get(username=settings.SEED_DEMO_USERNAME)
    if not Recommendation.objects.filter(user=demo).exists():
        _, recs = recommendations_generate(user=demo, limit=5)
        if len(recs) == 5:
            feedback.recommendation_accept(recommendation=recs[1])
            feedback.recommendation_decline(recommendation=recs[2], reason="Seen it before")
            feedback.recommendation_complete(recommendation=recs[3], effectiveness=0.8)
            # One left unanswered for over a week, then expired.
            Recommendation.objects.filter(pk=recs[4].pk).update(
                created_at=timezone.now() - datetime.timedelta(days=8)
            )
            feedback.recommendations_expire_stale()
    if not LearningPath.objects.filter(user=demo, goal=DEMO_GOAL).exists():
        path = paths.learning_path_create(user=demo, goal=DEMO_GOAL)
        first_stage = path.stages.order_by("order").first()
        for item in LearningPathItem.objects.filter(stage=first_stage).order_by("order")[:3]:
            paths.learning_path_item_complete(path=path, path_item_id=item.pk)
    states = sorted(set(Recommendation.objects.filter(user=demo).values_list("status", flat=True)))
    path = LearningPath.objects.get(user=demo, goal=DEMO_GOAL)
    return f"demo recommendations: {', '.join(states)}; path {path.progress:.0%} done"
