from experiments.charts import Interval, allocation_chart, interval_chart


def test_interval_chart__one_dot_and_bar_per_row_labels_escaped():
    svg = interval_chart(
        [
            Interval("control", 0.4, 0.35, 0.45, highlight=True),
            Interval("<b>t</b>", 0.5, 0.44, 0.56),
        ]
    )
    assert svg.startswith("<svg")
    assert svg.count("<circle") == 2
    assert "&lt;b&gt;t&lt;/b&gt;" in svg
    assert "<b>" not in svg
    assert 'stroke-dasharray="4 3"' in svg  # the control's reference line


def test_interval_chart__empty():
    assert interval_chart([]) == ""


def test_allocation_chart__stacked_areas_and_legend():
    svg = allocation_chart(["t0", "t1", "t2"], {"a": [0.5, 0.3, 0.1], "b": [0.5, 0.7, 0.9]})
    assert svg.count("<polygon") == 2
    assert ">a</text>" in svg
    assert ">b</text>" in svg
    assert allocation_chart([], {}) == ""


def test_results_view__allocation_chart_shows_the_newest_snapshots(strategy_catalog):
    """A bandit reweighted every 15 minutes has 2,000 snapshots after three weeks: the chart
    shows the newest 500, oldest first."""
    import datetime

    from django.utils import timezone

    from experiments.models import BanditWeightSnapshot, Experiment
    from experiments.selectors import experiment_results_display
    from tests.experiments.factories import make_experiment

    experiment = make_experiment(
        experiment_type=Experiment.Type.MULTI_ARMED_BANDIT,
        variants=[("a", "conservative", 1.0), ("b", "balanced", 1.0)],
    )
    start = timezone.now() - datetime.timedelta(days=21)
    BanditWeightSnapshot.objects.bulk_create(
        BanditWeightSnapshot(
            experiment=experiment,
            weights={"a": 0.5, "b": 0.5},
            computed_at=start + datetime.timedelta(minutes=15 * i),
        )
        for i in range(2000)
    )
    newest = start + datetime.timedelta(minutes=15 * 1999)
    svg = experiment_results_display(experiment)["allocation_chart"]
    assert f"{newest:%Y-%m-%d %H:%M}" in svg
    assert f"{start:%Y-%m-%d %H:%M}" not in svg
