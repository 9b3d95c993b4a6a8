import re

from experiments.charts import (
    PALETTE,
    Interval,
    allocation_chart,
    interval_chart,
    line_chart,
    nice_step,
    variant_colors,
)


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

    from experiments.admin_results import experiment_results_view
    from experiments.models import BanditWeightSnapshot, Experiment
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
    from config.admin_format import moment

    svg = experiment_results_view(experiment)["allocation_chart"]
    assert moment(newest) in svg
    assert moment(start) not in svg


def test_variant_colors__by_position_never_alphabetical():
    colors = variant_colors(["zeta", "alpha", "mid"])
    assert colors == {"zeta": PALETTE[0], "alpha": PALETTE[1], "mid": PALETTE[2]}


def test_allocation_chart__series_keep_the_given_colours():
    colors = {"b": "#111111", "a": "#222222"}
    svg = allocation_chart(["t0", "t1"], {"b": [0.5, 0.4], "a": [0.5, 0.6]}, colors=colors)
    fills = re.findall(r'<polygon[^>]*fill="(#[0-9a-f]{6})"', svg)
    assert fills == ["#111111", "#222222"]


def test_line_chart__round_ticks_gaps_and_empty():
    svg = line_chart(["d1", "d2", "d3"], {"Decisions": [10.0, None, 213.0]}, y_min=0.0)
    assert ">250<" in svg  # the axis ends at a round number above the maximum
    assert svg.count("<polyline") == 0  # a gap leaves no two consecutive points
    assert line_chart([], {}) == ""
    assert line_chart(["d1"], {"a": [None]}) == ""
    assert nice_step(213) == 50
    assert nice_step(0.15) == 0.05


def _colors_by_label(svg):
    """{label: colour} of an interval chart's rows or an allocation chart's legend."""
    found = {}
    for label, color in re.findall(
        r'text-anchor="end">([^<]+)</text><line[^>]*stroke="(#\w+)"', svg
    ):
        found[label.split(" (n")[0]] = color
    for color, label in re.findall(r'<rect[^>]*fill="(#\w+)"/><text[^>]*>([^<]+)</text>', svg):
        found[label] = color
    return found


def test_results_view__one_variant_one_colour_on_every_chart(strategy_catalog):
    """The control first, then the variants as declared: "zeta" keeps the second colour on
    the means, lift and allocation charts although the alphabet would put it last."""
    import datetime

    import numpy as np
    from django.utils import timezone

    from experiments.admin_results import experiment_results_view
    from experiments.models import BanditWeightSnapshot, Experiment
    from tests.experiments.factories import make_experiment

    experiment = make_experiment(
        experiment_type=Experiment.Type.MULTI_ARMED_BANDIT,
        variants=[
            ("mid", "conservative", 1.0),
            ("zeta", "balanced", 1.0),
            ("alpha", "pattern_heavy", 1.0),
        ],
    )
    BanditWeightSnapshot.objects.bulk_create(
        BanditWeightSnapshot(
            experiment=experiment,
            weights={"alpha": 0.2, "mid": 0.3, "zeta": 0.5},
            computed_at=timezone.now() - datetime.timedelta(hours=h),
        )
        for h in range(3)
    )
    rng = np.random.default_rng(1)
    experiment.variant_metrics = {
        "variants": [
            {
                "key": key,
                "name": key.title(),
                "is_control": key == "mid",
                "weight": 1.0,
                "assigned": 30,
                "with_outcomes": 30,
                "mean": float(rng.uniform(0.4, 0.6)),
                "variance": 0.01,
            }
            for key in ("alpha", "mid", "zeta")  # as evaluation stores them: alphabetical
        ],
        "comparisons": [
            {
                "variant": key,
                "difference": 0.01,
                "ci_lower": -0.01,
                "ci_upper": 0.03,
                "p_value": 0.2,
                "adjusted_p_value": 0.4,
                "relative_lift": 0.02,
                "lift_ci_lower": -0.02,
                "lift_ci_upper": 0.06,
                "chance_to_beat_control": 0.9,
            }
            for key in ("alpha", "zeta")
        ],
        "method": {"engine": "FREQUENTIST", "multiple_comparisons": "Holm", "alpha": 0.05},
    }
    experiment.save(update_fields=["variant_metrics"])

    view = experiment_results_view(experiment)

    expected = {"Mid": PALETTE[0], "Zeta": PALETTE[1], "Alpha": PALETTE[2]}
    assert [v["name"] for v in view["variants"]] == ["Mid", "Zeta", "Alpha"]
    assert {v["name"]: v["color"] for v in view["variants"]} == expected
    assert _colors_by_label(view["means_chart"]) == expected
    assert _colors_by_label(view["lift_chart"]) == {"Zeta": PALETTE[1], "Alpha": PALETTE[2]}
    assert _colors_by_label(view["allocation_chart"]) == expected
