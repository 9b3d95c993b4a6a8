"""The outcomes pages of the admin and the overview on its index (DESIGN.md §8): figures as
people read them, objects titled by their names, bounded queries."""

import datetime
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from experiments.models import Strategy
from outcomes.models import Effectiveness
from tests.experiments.factories import make_experiment
from tests.outcomes.factories import outcome_item, record
from tests.personalization.factories import UserFactory

RAW_FLOAT = re.compile(r"\d\.\d{6,}")


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


def _visible_text(html: str) -> str:
    """The page without its markup, scripts and styles (what a reader sees)."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"<[^>]+>", " ", html)


def _effectiveness(strategy, *, user=None, config=None, **figures):
    start = datetime.datetime(2026, 11, 16, tzinfo=datetime.UTC)
    values = {
        "n_personalized": 1652,
        "n_baseline": 1400,
        "sample_size": 3052,
        "mean_personalized": 0.8000000000000002,
        "mean_baseline": 0.7,
        "difference": 0.10000000000000009,
        "p_value": 0.0000000000000011630261408257713,
        "ci_lower": 0.0812345678,
        "ci_upper": 0.1187654321,
        "composite_score": 63.456789,
        "retention_improvement": 12.345678,
        "is_statistically_significant": True,
    } | figures
    return Effectiveness.objects.create(
        scope="USER" if user else "GLOBAL",
        context=strategy.context,
        strategy=strategy,
        user=user,
        config=config,
        window_start=start,
        window_end=start + datetime.timedelta(days=14),
        calculated_at=timezone.now(),
        **values,
    )


def test_effectiveness_changelist__named_rows_and_formatted_figures(admin_client, strategy_catalog):
    balanced = Strategy.objects.get(context="CONTENT", key="balanced")
    _effectiveness(balanced)

    html = admin_client.get(reverse("admin:outcomes_effectiveness_changelist")).content.decode()

    assert "Balanced for everyone · Content · 2 weeks from 16 Nov 2026" in html
    assert "1,652 / 1,400 learners" in html
    assert "+0.1" in html
    assert "&lt; 0.001" in html
    assert "63.5" in html
    assert not RAW_FLOAT.search(_visible_text(html))


def test_effectiveness_change_page__title_and_every_figure_formatted(
    admin_client, strategy_catalog
):
    balanced = Strategy.objects.get(context="CONTENT", key="balanced")
    row = _effectiveness(balanced)

    page = admin_client.get(reverse("admin:outcomes_effectiveness_change", args=[row.pk]))
    html = page.content.decode()

    assert page.status_code == 200
    assert "<h2>Balanced for everyone · Content · 2 weeks from 16 Nov 2026</h2>" in html
    assert "<title>Balanced for everyone" in html
    assert "+12.3 %" in html  # retention improvement, stored in percent
    assert not RAW_FLOAT.search(_visible_text(html))
    assert f"{row.strategy_id} for everyone" not in html


def test_outcome_changelist__titles_and_rewards(admin_client, strategy_catalog):
    learner = UserFactory(display_name="Jane Doe")
    record(
        learner,
        outcome_item(
            "e1",
            context="CONTENT",
            outcome_type="CONTENT_ENGAGED",
            retention_score=0.8000000000000002,
            performance_score=0.8,
        ),
    )

    html = admin_client.get(reverse("admin:outcomes_outcome_changelist")).content.decode()

    assert "Content engaged by Jane Doe · Content" in html
    assert not RAW_FLOAT.search(_visible_text(html))


def test_overview__first_panel_of_the_index_with_bounded_queries(
    admin_client, strategy_catalog, django_assert_max_num_queries
):
    from experiments.services.decisions import decision_make
    from outcomes.services.evaluation import experiment_evaluate

    experiment = make_experiment(context="MISSION", name="Pacing")
    for index in range(6):
        learner = UserFactory()
        decision = decision_make(user=learner, context="MISSION").decision
        record(
            learner,
            outcome_item(f"o{index}", decision=decision.pk, retention_score=0.3 + index / 10),
        )
    experiment_evaluate(experiment=experiment)
    for key in ("balanced", "pattern_heavy"):
        _effectiveness(Strategy.objects.get(context="CONTENT", key=key))

    with django_assert_max_num_queries(20):
        page = admin_client.get(reverse("admin:index"))
    html = page.content.decode()

    assert page.status_code == 200
    assert html.index('id="overview"') < html.index('class="app-')
    assert 'id="activity-chart"' in html
    assert "6 decisions, 6 outcomes" in html
    assert "Pacing" in html
    assert "Not ready yet" in html
    assert "No active holdout" in html
    assert "Balanced" in html
    assert html.count("effectiveness-chart") == 1
    assert not RAW_FLOAT.search(_visible_text(html))


def test_overview__queries_do_not_grow_with_the_data(admin_client, strategy_catalog):
    """The same number of queries with one or with many experiments, windows and holdouts."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from experiments.services.holdouts import holdout_create

    def count():
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get(reverse("admin:index")).status_code == 200
        return len(queries)

    make_experiment(context="MISSION", name="One")
    _effectiveness(Strategy.objects.get(context="CONTENT", key="balanced"))
    few = count()
    make_experiment(context="CONTENT", name="Two")
    make_experiment(context="SESSION", name="Three")
    for key in ("pattern_heavy", "prediction_heavy"):
        _effectiveness(Strategy.objects.get(context="CONTENT", key=key))
    holdout_create(actor=None, data={"name": "Held", "percent": 5.0, "contexts": []})
    assert count() == few


def test_offline_page__form_table_and_chart(admin_client, strategy_catalog):
    import numpy as np

    from tests.outcomes.test_offline import WINDOW_START, _log

    _log(strategy_catalog, np.random.default_rng(3), learners=40, per_learner=8)
    page = admin_client.get(
        "/admin/outcomes/offline/", {"context": "MISSION", "window_start": WINDOW_START}
    )
    assert page.status_code == 200
    html = page.content.decode()
    assert "Balanced for everyone" in html
    assert "Per learner, level MEDIUM" in html
    assert "<svg" in html
    assert "Doubly robust" in html
    assert not re.search(r"\d\.\d{6,}", re.sub(r"<svg.*?</svg>", "", html, flags=re.S))


def test_offline_page__staff_only(client, user):
    client.force_login(user)
    assert client.get("/admin/outcomes/offline/").status_code == 302
