"""The ranking on a fixed catalog and profile: order and reasons pinned."""

import pytest

from recommendations.ranking import Candidate, Learner, StrategyParams, rank, rank_by_popularity

CATALOG = [
    Candidate(1, "Algebra video", "algebra", "VIDEO", 2, 15),
    Candidate(2, "Algebra drill", "algebra", "EXERCISE", 3, 30),
    Candidate(3, "Geometry article", "geometry", "ARTICLE", 5, 30),
    Candidate(4, "Geometry quiz", "geometry", "QUIZ", 4, 20),
    Candidate(5, "Logic scenario", "logic", "SCENARIO", 3, 90),
]
LEARNER = Learner(
    ratings={"algebra": 0.2, "geometry": 0.9}, daily_minutes=30, learning_style="VISUAL"
)
PARAMS = StrategyParams(
    content_types=["VIDEO", "EXERCISE"], learning_style="MIXED", topic_selection="weakness_first"
)


def test_rank__order_and_scores_pinned():
    ranked = rank(CATALOG, LEARNER, PARAMS, limit=5)
    # weakness_first weights 3, 2, 1, 1, 1 (sum 8); algebra 0.2 → target difficulty 2:
    # video: (3·0.8 + 2·1 + 1 + 1·1.0 + 1·0.5) / 8 = 0.8625
    # drill: (3·0.8 + 2·0.75 + 1 + 1·0.4 + 1·1) / 8 = 0.7875
    # logic (unrated 0.5, target 3): (3·0.5 + 2·1 + 0 + 0.7 + 0) / 8 = 0.525
    # geometry article (0.9, target 5): (3·0.1 + 2·1 + 0 + 0.3 + 1) / 8 = 0.45
    # geometry quiz: (3·0.1 + 2·0.75 + 0 + 0.4 + 2/3) / 8 = 0.358333
    assert [r.candidate.id for r in ranked] == [1, 2, 5, 3, 4]
    assert [r.score for r in ranked] == pytest.approx(
        [0.8625, 0.7875, 0.525, 0.45, 0.358333], abs=1e-6
    )
    assert ranked[0].factors == {
        "weakness": pytest.approx(0.8),
        "difficulty": 1.0,
        "format": 1.0,
        "style": 1.0,
        "duration": 0.5,
    }


def test_rank__reasons_name_the_top_factors():
    ranked = rank(CATALOG, LEARNER, PARAMS, limit=2)
    assert ranked[0].reason == (
        "Recommended because it works on algebra, one of your weaker skills (rated 0.20) "
        "and matches your level in algebra (difficulty 2 of 5)."
    )
    unrated = rank([CATALOG[4]], LEARNER, PARAMS, limit=1)[0]
    assert "have not been assessed on yet" in unrated.reason


def test_rank__learning_style_ignored_without_profiling():
    private = Learner(ratings=LEARNER.ratings, daily_minutes=30, learning_style=None)
    with_style = rank(CATALOG, LEARNER, PARAMS, limit=5)
    without = rank(CATALOG, private, PARAMS, limit=5)
    assert [r.score for r in with_style] != [r.score for r in without]
    assert all("learning style" not in r.reason for r in without)


def test_rank__limit_and_empty():
    assert len(rank(CATALOG, LEARNER, PARAMS, limit=2)) == 2
    assert rank([], LEARNER, PARAMS, limit=5) == []


def test_popularity__most_taken_first():
    ranked = rank_by_popularity(CATALOG, {3: 5, 1: 2}, limit=3)
    assert [r.candidate.id for r in ranked] == [3, 1, 2]
    assert ranked[0].score == 1.0
    assert "personalization is off" in ranked[0].reason
