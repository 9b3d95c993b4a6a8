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
