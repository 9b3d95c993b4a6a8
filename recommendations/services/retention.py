"""Writes of the decision log's retention (DESIGN.md §6, driven by
outcomes/services/retention.py): a recommendation keeps its attribution when the decision it
came from is purged; only the link goes."""

from django.db.models import F

from config.arrays import AnyOf
from recommendations.models import Recommendation


def recommendations_decisions_unlink(*, decision_ids: list[int]) -> int:
    """Clear the link to these decisions (one statement, the ids as one array parameter)."""
    if not decision_ids:
        return 0
    return Recommendation.objects.filter(AnyOf(F("decision_id"), decision_ids)).update(
        decision=None
    )
