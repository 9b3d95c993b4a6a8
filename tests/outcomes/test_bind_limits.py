"""DESIGN.md §10 bind limits: an experiment with 100,000 participants evaluates. PostgreSQL
accepts at most 65,535 parameters a statement, so no id list may travel as one parameter
per id. PostgreSQL only."""

import pytest
from django.db import connection

from experiments.models import Assignment
from experiments.services.decisions import decision_make
from outcomes.services.evaluation import experiment_evaluate
from personalization.models import User
from tests.bulk import clone_rows
from tests.experiments.factories import make_experiment
from tests.personalization.factories import UserFactory

PARTICIPANTS = 100_000

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the 65,535-parameter limit is PostgreSQL's"
)


def test_experiment_evaluate__100000_participants__every_assignment_scored(strategy_catalog):
    experiment = make_experiment(context="MISSION")
    template_user = UserFactory()
    decision_make(user=template_user, context="MISSION")
    template = Assignment.objects.get(experiment=experiment, user=template_user)
    clone_rows(
        User,
        template_user.pk,
        PARTICIPANTS - 1,
        vary={"username": "'bulk-' || g", "external_id": "'bulk-' || g", "email": "''"},
    )
    first = User.objects.get(username="bulk-1").pk
    control, treatment = experiment.variants.order_by("pk").values_list("pk", flat=True)
    clone_rows(
        Assignment,
        template.pk,
        PARTICIPANTS - 1,
        vary={
            "user_id": f"{int(first) - 1} + g",
            "variant_id": f"CASE WHEN mod(g, 2) = 0 THEN {int(control)} ELSE {int(treatment)} END",
            # What the evaluation stores for a learner without outcomes, so that it rewrites
            # only the template's: the figures of all 100,000 are still read back.
            "metrics": """'{"value": null, "outcomes": 0}'::jsonb""",
        },
    )
    assert Assignment.objects.filter(experiment=experiment).count() == PARTICIPANTS
    results = experiment_evaluate(experiment=experiment)
    assert sum(v["assigned"] for v in results["variants"]) == PARTICIPANTS
    assert not Assignment.objects.filter(experiment=experiment, metrics={}).exists()
    assert Assignment.objects.get(pk=template.pk).metrics == {"value": None, "outcomes": 0}
