"""Matching: threshold-aware weights, and the lock-step port of scipy's assignment (same pairs as scipy)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from regbench.metrics.geometry import reaches
from regbench.metrics.matching import (
    LOCKSTEP_MAX_ROWS,
    assign_padded,
    isolated,
    linear_sum_assignment_batch,
    max_weight_assignment,
    threshold_weights,
)


def assign_batch(weights: np.ndarray) -> np.ndarray:
    """Every sample of the batch uses the whole matrix."""
    batch, n, m = weights.shape
    return max_weight_assignment(weights, np.full(batch, n), np.full(batch, m))


def weights_at(iou: np.ndarray, threshold: float, allowed: np.ndarray | None = None) -> np.ndarray:
    return threshold_weights(iou, reaches(iou, threshold), allowed)


def hits(mask: np.ndarray, iou: np.ndarray, threshold: float = 0.5) -> int:
    return int((mask & (iou >= threshold)).sum())


def test_threshold_aware_matching_avoids_the_trap() -> None:
    iou = np.array([[[1.0, 0.5], [0.5, 0.05]]])
    # maximising total IoU: the diagonal (1.05 > 1.0), one hit; the anti-diagonal has two
    assert hits(assign_batch(iou), iou) == 1
    mask = assign_batch(weights_at(iou, 0.5))
    assert hits(mask, iou) == 2 and mask[0].tolist() == [[False, True], [True, False]]


def test_threshold_weights_prefer_total_iou_among_equal_hit_counts() -> None:
    iou = np.array([[[0.9, 0.6], [0.6, 0.55]]])  # both assignments have 2 hits; the diagonal has more IoU
    mask = assign_batch(weights_at(iou, 0.5))
    assert mask[0].tolist() == [[True, False], [False, True]]


def test_name_constraint_blocks_pairs() -> None:
    iou = np.array([[[1.0, 0.0], [0.0, 1.0]]])
    same = np.array([[[False, False], [False, True]]])
    mask = assign_batch(weights_at(iou, 0.5, same))
    assert hits(mask & same, iou) == 1


def test_isolated() -> None:
    positive = np.array([[[1, 0], [0, 1]], [[1, 1], [0, 0]], [[0, 0], [0, 0]]], dtype=bool)
    assert isolated(positive).tolist() == [True, False, True]


def tie_heavy(rng: np.random.Generator, kind: int, shape: tuple[int, ...]) -> np.ndarray:
    """Cost matrices with many exact ties, where scipy's choice among equals shows."""
    if kind == 0:
        return rng.integers(0, 3, shape).astype(float)
    if kind == 1:  # 1 - IoU with IoU in a few values, mostly 0
        return 1 - np.where(rng.random(shape) < 0.6, 0.0, rng.choice([0.25, 0.5, 0.75, 1.0], shape))
    if kind == 2:
        return 1 - np.where(rng.random(shape) < 0.7, 0.0, rng.random(shape))
    return rng.random(shape)


@pytest.mark.parametrize("kind", range(4))
@pytest.mark.parametrize("maximize", [False, True])
def test_lock_step_assignment_returns_scipys_pairs(kind: int, maximize: bool) -> None:
    rng = np.random.default_rng(kind * 2 + maximize)
    batch = 600
    n, m = rng.integers(0, 8, batch), rng.integers(0, 8, batch)
    cost = tie_heavy(rng, kind, (batch, 7, 7))
    mask = assign_padded(cost, n, m, maximize=maximize)
    for b in range(batch):
        rows, cols = linear_sum_assignment(cost[b, : n[b], : m[b]], maximize=maximize)
        expected = np.zeros((7, 7), dtype=bool)
        expected[rows, cols] = True
        assert np.array_equal(mask[b], expected), (b, n[b], m[b])


def test_lock_step_on_an_unpadded_square_batch() -> None:
    rng = np.random.default_rng(11)
    cost = tie_heavy(rng, 1, (200, 5, 5))
    col4row = linear_sum_assignment_batch(cost)
    for b in range(200):
        assert col4row[b].tolist() == linear_sum_assignment(cost[b])[1].tolist()


def test_constant_cost_gives_the_identity_like_scipy() -> None:
    assert linear_sum_assignment_batch(np.ones((1, 3, 3)))[0].tolist() == [0, 1, 2]


@pytest.mark.parametrize(("n", "m"), [(1, 1), (2, 3), (4, 4), (5, 3), (3, 7), (7, 7)])
def test_batched_assignment_reaches_scipys_optimum(n: int, m: int) -> None:
    weights = np.random.default_rng(n * 10 + m).random((50, n, m))
    mask = assign_batch(weights)
    assert (mask.sum(axis=(1, 2)) == min(n, m)).all()
    assert (mask.sum(axis=1) <= 1).all() and (mask.sum(axis=2) <= 1).all()
    for b in range(50):
        rows, cols = linear_sum_assignment(weights[b], maximize=True)
        assert (weights[b] * mask[b]).sum() == pytest.approx(weights[b, rows, cols].sum())


def test_empty_batches() -> None:
    assert assign_batch(np.zeros((0, 2, 2))).shape == (0, 2, 2)
    assert not assign_padded(np.zeros((2, 3, 3)), np.array([0, 3]), np.array([3, 0])).any()
    assert not assign_batch(np.zeros((1, 0, 3))).any()


def test_samples_larger_than_the_lock_step_limit_go_to_scipy() -> None:
    size = LOCKSTEP_MAX_ROWS + 2
    cost = tie_heavy(np.random.default_rng(5), 1, (3, size, size))
    mask = assign_padded(cost, np.full(3, size), np.array([size, size - 1, 4]))
    for b, m in enumerate([size, size - 1, 4]):
        rows, cols = linear_sum_assignment(cost[b, :, :m])
        assert np.flatnonzero(mask[b]).tolist() == sorted((rows * size + cols).tolist())
