"""Variant weights written by the bandit reweighting (outcomes calls this)."""

import datetime

from django.db import transaction

from experiments.catalog import catalog_invalidate
from experiments.models import BanditWeightSnapshot, Experiment, Variant


@transaction.atomic
def variant_weights_set(
    *,
    experiment: Experiment,
    weights: dict[int, float],
    seed: int | None,
    computed_at: datetime.datetime,
) -> BanditWeightSnapshot:
    """Store a bandit's new allocation and keep it as a snapshot. Existing assignments do
    not move; only new users see the new weights."""
    variants = {v.pk: v for v in Variant.objects.filter(experiment=experiment)}
    for variant_id, weight in weights.items():
        variants[variant_id].weight = weight
    Variant.objects.bulk_update(list(variants.values()), ["weight"])
    snapshot = BanditWeightSnapshot.objects.create(
        experiment=experiment,
        weights={variants[variant_id].key: weight for variant_id, weight in weights.items()},
        seed=seed,
        computed_at=computed_at,
    )
    catalog_invalidate()
    return snapshot
