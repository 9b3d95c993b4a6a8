"""Deterministic assignment hashing (DESIGN.md §4 step 2). Pure: no Django.

bucket(s, id) = int(sha256(f"{s}:{id}").hexdigest()[:15], 16) / 16**15, uniform on [0, 1).
"""

import hashlib
from collections.abc import Sequence

import numpy as np

BUCKET_SCALE = 16**15


def bucket(salt: str, user_id: int | str) -> float:
    digest = hashlib.sha256(f"{salt}:{user_id}".encode()).hexdigest()
    return int(digest[:15], 16) / BUCKET_SCALE


def is_eligible(salt: str, user_id: int | str, traffic_percent: float) -> bool:
    """A user takes part when bucket(salt, id) < traffic_percent / 100."""
    return bucket(salt, user_id) < traffic_percent / 100.0


def normalized(weights: Sequence[float] | np.ndarray) -> np.ndarray:
    values = np.asarray(weights, dtype=float)
    if values.size == 0 or (values < 0).any() or values.sum() <= 0:
        raise ValueError("weights must be non-negative and not all zero")
    return values / values.sum()


def index_by_bucket(weights: Sequence[float] | np.ndarray, u: float) -> int:
    """The first variant whose cumulative normalized weight exceeds u."""
    cumulative = np.cumsum(normalized(weights))
    index = int(np.searchsorted(cumulative, u, side="right"))
    return min(index, len(cumulative) - 1)  # u just below 1 with rounding in the sum


def variant_bucket(salt: str, user_id: int | str) -> float:
    """The second, independent hash that picks the variant."""
    return bucket(f"{salt}:variant", user_id)
