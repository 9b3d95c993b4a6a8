"""The rows of the effectiveness windows (DESIGN.md §5.2) from grouped outcomes, for every
group at once in numpy: GLOBAL rows take each learner's mean per metric as one value (the
learner is the unit: one learner's outcomes are not independent), USER rows test one user's
outcomes directly (the outcome is the unit)."""

from typing import Any

import numpy as np
from django.conf import settings

from config.arrays import Labels
from outcomes.aggregation import CONTEXTS, Groups
from outcomes.grouping import combine, joint_codes, take
from outcomes.samples import learner_samples, outcome_samples, window_statistics
from outcomes.windows import window_bounds_array


def finite(columns: dict[str, Any]) -> dict[str, Any]:
    """±inf (a degenerate division) is stored as NULL, like NaN."""
    return {
        name: np.where(np.isfinite(v), v, np.nan)
        if isinstance(v, np.ndarray) and v.dtype.kind == "f"
        else v
        for name, v in columns.items()
    }


def global_rows(groups: Groups, baselines: np.ndarray, days: int, minimum: int) -> dict[str, Any]:
    """GLOBAL rows: per (context, strategy, window), the learners with personalized outcomes
    of the strategy against the learners with outcomes without personalization in the context
    and window, each learner one value (their mean). `groups` are at the user grain."""
    weights = settings.OUTCOME_REWARD_WEIGHTS
    g = groups
    personal = np.flatnonzero(g.applied & (g.strategy > 0) & ~np.isin(g.strategy, baselines))
    base = np.flatnonzero(~g.applied)
    # A learner's baseline outcomes may come from several strategies: one row per learner.
    (learner_codes,) = joint_codes([g.context[base], g.window[base], g.user[base]])
    _, learner_first, learner_measures = combine(learner_codes, g.measures[base])
    learners = base[learner_first]
    # Each personalized group row is one learner in one (context, strategy, window) sample.
    (p_codes,) = joint_codes([g.context[personal], g.window[personal], g.strategy[personal]])
    _, p_first, p_set = learner_samples(p_codes, g.measures[personal])
    rows = personal[p_first]  # one group row standing for each (context, strategy, window)
    b_codes, match = joint_codes(
        [g.context[learners], g.window[learners]], [g.context[rows], g.window[rows]]
    )
    b_keys, _, b_set = learner_samples(b_codes, learner_measures)
    start, end = window_bounds_array(g.window[rows], days)
    return {
        "context": Labels(g.context[rows], CONTEXTS),
        "strategy": g.strategy[rows],
        "window_start": start,
        "window_end": end,
        **window_statistics(p_set, b_set.take(b_keys, match), minimum=minimum, weights=weights),
    }


def user_rows(
    groups: Groups,
    baselines: np.ndarray,
    selected: np.ndarray,
    configs: dict[str, np.ndarray],
    days: int,
    minimum: int,
) -> dict[str, Any]:
    """USER rows of the selected group rows: per user's config and window, the user's
    personalized outcomes of the strategy against the user's outcomes without
    personalization in the context and window (the outcome is the unit)."""
    weights = settings.OUTCOME_REWARD_WEIGHTS
    g = groups
    personal = selected & g.applied & (g.strategy > 0) & ~np.isin(g.strategy, baselines)
    base = np.flatnonzero(selected & ~g.applied)
    # Each personalized group row is one (context, strategy, user, window) already.
    personal = np.flatnonzero(personal)
    config_codes, personal_codes = joint_codes(
        [configs["user"], configs["strategy"]], [g.user[personal], g.strategy[personal]]
    )
    config = take(config_codes, configs["id"], personal_codes)
    rows = personal[config > 0]  # the user's strategy without a config has no USER row
    config = config[config > 0]
    b_codes, match = joint_codes(
        [g.context[base], g.user[base], g.window[base]],
        [g.context[rows], g.user[rows], g.window[rows]],
    )
    b_keys, _, b_measures = combine(b_codes, g.measures[base])
    start, end = window_bounds_array(g.window[rows], days)
    return {
        "context": Labels(g.context[rows], CONTEXTS),
        "strategy": g.strategy[rows],
        "user": g.user[rows],
        "config": config,
        "window_start": start,
        "window_end": end,
        **window_statistics(
            outcome_samples(g.measures[rows]),
            outcome_samples(take(b_keys, b_measures, match)),
            minimum=minimum,
            weights=weights,
        ),
    }
