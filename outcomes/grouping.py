"""Group-by and join of keyed numpy arrays (the effectiveness computation matches samples of
different tables by their integer keys). Pure: numpy only."""

from math import prod

import numpy as np


def joint_codes(*tables: list[np.ndarray]) -> list[np.ndarray]:
    """One int64 per row of each table (a list of integer key columns, the same number in
    every table), equal exactly when the keys are equal and ordered like the key tuples, so
    that rows of different tables can be matched with searchsorted."""
    width = len(tables[0])
    lows, spans = [], []
    for i in range(width):
        values = np.concatenate([np.asarray(table[i], dtype=np.int64) for table in tables])
        low, high = (int(values.min()), int(values.max())) if values.size else (0, 0)
        lows.append(low)
        spans.append(high - low + 1)
    if prod(spans) >= 2**63:
        raise OverflowError("keys too wide to combine into one 64-bit code")
    result = []
    for table in tables:
        code = np.zeros(len(table[0]), dtype=np.int64)
        for column, low, span in zip(table, lows, spans, strict=True):
            code = code * span + (np.asarray(column, dtype=np.int64) - low)
        result.append(code)
    return result


def lookup(keys: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each code: its index in the sorted `keys` and whether it is there."""
    index = np.searchsorted(keys, codes)
    found = index < keys.size
    found[found] = keys[index[found]] == codes[found]
    return index, found


def take(keys: np.ndarray, values: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """For each code, the row of `values` whose key (`keys`, aligned with `values`, distinct)
    it is; zeros where a code has none."""
    order = np.argsort(keys, kind="stable")
    index, found = lookup(keys[order], codes)
    result = np.zeros((codes.size, *values.shape[1:]), dtype=values.dtype)
    result[found] = values[order][index[found]]
    return result


def combine(codes: np.ndarray, measures: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Measure rows (n, Σ, Σ(x − x̄)², then any sums) merged per code: counts and sums add,
    centred sums of squares combine as M2 = Σ M2_i + Σ n_i·(x̄_i − x̄)² (Chan et al.).
    Returns (sorted codes, a row index of each, merged measures)."""
    keys, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
    merged = np.zeros((keys.size, measures.shape[1]))
    np.add.at(merged, inverse, measures)
    n = measures[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        row_mean = np.where(n > 0, measures[:, 1] / np.where(n > 0, n, 1), 0.0)
        merged_n = merged[:, 0]
        merged_mean = np.where(
            merged_n > 0, merged[:, 1] / np.where(merged_n > 0, merged_n, 1), 0.0
        )
    spread = np.where(n > 0, n * (row_mean - merged_mean[inverse]) ** 2, 0.0)
    merged[:, 2] = 0.0
    np.add.at(merged[:, 2], inverse, measures[:, 2] + spread)
    return keys, first, merged
