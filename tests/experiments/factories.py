from typing import Any

import pytest
from django.conf import settings

from experiments.catalog import context_catalog
from experiments.models import Experiment, Strategy
from experiments.services.experiments import experiment_create, experiment_start
from experiments.services.strategies import strategy_catalog_load


def load_catalog() -> None:
    strategy_catalog_load(path=settings.BASE_DIR / "fixtures" / "strategies.json")


@pytest.fixture
def strategy_catalog(db) -> dict[tuple[str, str], Strategy]:
    load_catalog()
    return {(s.context, s.key): s for s in Strategy.objects.all()}


def make_experiment(
    *,
    context: str = "MISSION",
    experiment_type: str = Experiment.Type.AB_TEST,
    variants: list[tuple[str, str, float]] | None = None,
    start: bool = True,
    **fields: Any,
) -> Experiment:
    """An experiment over the loaded catalog; variants are (key, strategy key, weight), the
    first is the control."""
    variants = variants or [("control", "conservative", 1.0), ("treatment", "balanced", 1.0)]
    strategies = {s.key: s for s in Strategy.objects.filter(context=context)}
    experiment = experiment_create(
        actor=None,
        data={
            "name": fields.pop("name", f"{context} {experiment_type} {Experiment.objects.count()}"),
            "experiment_type": experiment_type,
            "context": context,
            **fields,
        },
        variants=[
            {
                "key": key,
                "name": key.title(),
                "strategy": strategies[strategy_key],
                "weight": weight,
                "is_control": index == 0,
            }
            for index, (key, strategy_key, weight) in enumerate(variants)
        ],
    )
    if start:
        experiment = experiment_start(actor=None, experiment=experiment)
    context_catalog(context)  # warm, as a running server would be
    return experiment
