"""DESIGN.md §10 bind limits: a learner with 100,000 rows of one kind is erased and exported.
PostgreSQL accepts at most 65,535 parameters a statement, so no id list may travel as one
parameter per id. PostgreSQL only (SQLite has its own, lower limit and no such learners)."""

import pytest
from django.db import connection

from experiments.models import Decision
from experiments.services.decisions import decision_make
from outcomes.models import Outcome
from outcomes.services.ingest import outcome_record_many
from personalization.models import User
from personalization.selectors import user_data_export
from personalization.services.users import user_erase
from tests.bulk import clone_rows

ROWS = 100_000

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the 65,535-parameter limit is PostgreSQL's"
)


@pytest.fixture
def heavy_learner(user, strategy_catalog):
    """100,000 decisions and 100,000 outcomes, each outcome attributed to a decision."""
    decision = decision_make(user=user, context="MISSION").decision
    clone_rows(Decision, decision.pk, ROWS - 1)
    outcome_record_many(
        user=user,
        items=[
            {
                "event_id": "e-0",
                "decision": decision.pk,
                "outcome_type": "MISSION_COMPLETED",
                "retention_score": 0.5,
            }
        ],
    )
    template = Outcome.objects.get(user=user)
    # The copies of the decision took the ids after it, in order (one sequence, one session).
    clone_rows(
        Outcome,
        template.pk,
        ROWS - 1,
        vary={"event_id": "'e-' || g", "decision_id": f"{int(decision.pk)} + g"},
    )
    return user


def test_user_erase__100000_rows_of_one_kind__every_row_gone(heavy_learner):
    assert Outcome.objects.filter(user=heavy_learner).count() == ROWS
    assert Outcome.objects.filter(decision__user=heavy_learner).count() == ROWS
    assert Decision.objects.filter(user=heavy_learner).count() == ROWS
    counts = user_erase(actor=None, user=heavy_learner)
    assert counts["outcomes.outcome"] == ROWS
    assert counts["experiments.decision"] == ROWS
    assert not User.objects.filter(pk=heavy_learner.pk).exists()
    assert not Outcome.objects.exists()
    assert not Decision.objects.exists()


def test_user_data_export__100000_rows_of_one_kind__all_exported(heavy_learner):
    export = user_data_export(user=heavy_learner)
    assert len(export["data"]["outcomes.outcome"]) == ROWS
    assert len(export["data"]["experiments.decision"]) == ROWS
