"""The pure skill math, against hand-computed values."""

import pytest

from personalization.ratings import (
    SECONDS_PER_WEEK,
    SkillHistory,
    ewma_rating,
    histories_from_arrays,
    skill_velocity,
    summarize,
    weaknesses,
)

WEEK = SECONDS_PER_WEEK


def test_ewma__single_score_is_the_rating():
    assert ewma_rating([0.3]) == pytest.approx(0.3)


def test_ewma__newest_weight_half():
    # r1 = 0.2; r2 = 0.5·0.6 + 0.5·0.2 = 0.4; r3 = 0.5·1.0 + 0.5·0.4 = 0.7
    assert ewma_rating([0.2, 0.6]) == pytest.approx(0.4)
    assert ewma_rating([0.2, 0.6, 1.0]) == pytest.approx(0.7)


def test_ewma__matches_recursion_on_long_history():
    scores = [0.1, 0.9, 0.4, 0.4, 0.8, 0.0, 0.6, 0.3]
    rating = scores[0]
    for score in scores[1:]:
        rating = 0.5 * score + 0.5 * rating
    assert ewma_rating(scores) == pytest.approx(rating)


def test_ewma__empty__refused():
    with pytest.raises(ValueError, match="at least one score"):
        ewma_rating([])


def test_weaknesses__below_half_weakest_first():
    assert weaknesses({"a": 0.45, "b": 0.9, "c": 0.1, "d": 0.5, "e": 0.45}) == ["c", "a", "e"]


def test_velocity__history_before_window_is_the_start():
    now = 20 * WEEK
    # before the window (starts at 12 weeks): 0.2 → start rating 0.2 at week 12
    # inside: 0.6 at week 16 → rating 0.4; change 0.2 over (16 − 12) = 4 weeks → 0.05
    history = SkillHistory("s", scores=[0.2, 0.6], times=[1 * WEEK, 16 * WEEK])
    assert skill_velocity(history, now=now) == pytest.approx(0.05)


def test_velocity__first_assessed_inside_window():
    now = 10 * WEEK
    # start 0.2 at week 4; then 0.6 (week 6) → 0.4, 1.0 (week 8) → 0.7; 0.5 over 4 weeks
    history = SkillHistory("s", scores=[0.2, 0.6, 1.0], times=[4 * WEEK, 6 * WEEK, 8 * WEEK])
    assert skill_velocity(history, now=now) == pytest.approx(0.125)


def test_velocity__at_least_one_week():
    # 0.2 → 0.6 within a day: 0.4 − 0.2 = 0.2 over max(1/7, 1) = 1 week
    history = SkillHistory("s", scores=[0.2, 0.6], times=[0.0, WEEK / 7])
    assert skill_velocity(history, now=WEEK) == pytest.approx(0.2)


def test_velocity__not_assessed_in_window__none():
    history = SkillHistory("s", scores=[0.5], times=[0.0])
    assert skill_velocity(history, now=20 * WEEK) is None


def test_summarize__from_arrays():
    histories = histories_from_arrays(
        ["algebra", "algebra", "geometry"], [0.2, 0.6, 0.9], [0.0, WEEK, 2 * WEEK]
    )
    summary = summarize(histories, now=3 * WEEK)
    assert summary.ratings == pytest.approx({"algebra": 0.4, "geometry": 0.9})
    assert summary.weaknesses == ["algebra"]
    # algebra: +0.2 over 1 week; geometry: one score, no change → mean 0.1
    assert summary.learning_velocity == pytest.approx(0.1)


def test_summarize__nothing__empty():
    summary = summarize(histories_from_arrays([], [], []), now=0.0)
    assert summary.ratings == {}
    assert summary.weaknesses == []
    assert summary.learning_velocity is None
