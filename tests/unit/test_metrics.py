"""Metrics against hand-computed values (and sklearn where it has the same metric)."""

import numpy as np
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from rechub_core.metrics import auc, exclude_and_truncate, gauc, logloss, rank_metrics, topk_metrics


def test_topk_metrics_hand_computed():
    retrieved = np.array([[5, 3, 9], [1, 2, 4], [7, 8, 6]])
    targets = np.array([[3, -1], [4, 1], [0, -1]])
    m = topk_metrics(retrieved, targets, k=3)
    # user 0: target 3 at rank 2; user 1: targets 1 (rank 1) and 4 (rank 3); user 2: miss
    assert m["recall@3"] == pytest.approx((1 + 1 + 0) / 3)
    assert m["hit@3"] == pytest.approx(2 / 3)
    assert m["precision@3"] == pytest.approx((1 / 3 + 2 / 3 + 0) / 3)
    assert m["mrr@3"] == pytest.approx((1 / 2 + 1 + 0) / 3)
    ndcg0 = 1 / np.log2(3)
    ndcg1 = (1 + 1 / np.log2(4)) / (1 + 1 / np.log2(3))
    assert m["ndcg@3"] == pytest.approx((ndcg0 + ndcg1 + 0) / 3)


def test_topk_metrics_truncates_to_k_and_ignores_users_without_targets():
    retrieved = np.array([[1, 2, 3], [1, 2, 3]])
    targets = np.array([[3], [-1]])
    m = topk_metrics(retrieved, targets, k=2)
    assert m["recall@2"] == 0.0 and m["hit@2"] == 0.0


def test_exclude_and_truncate_keeps_rank_order():
    candidates = np.array([[4, 2, 7, 1], [3, 5, -1, 6]])
    excluded = np.array([[False, True, False, False], [True, False, False, False]])
    out = exclude_and_truncate(candidates, excluded, 3)
    np.testing.assert_array_equal(out, [[4, 7, 1], [5, 6, -1]])


def test_auc_hand_computed_with_ties():
    labels = np.array([1, 0, 1, 0])
    scores = np.array([0.9, 0.9, 0.5, 0.1])
    # pairs (pos, neg): (0.9,0.9) tie=0.5, (0.9,0.1)=1, (0.5,0.9)=0, (0.5,0.1)=1 -> 2.5/4
    assert auc(labels, scores) == pytest.approx(0.625)


def test_auc_matches_sklearn_on_random_data():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 1000)
    scores = np.round(rng.normal(size=1000) + labels, 1)  # rounding makes ties
    assert auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores))


def test_auc_needs_both_classes():
    with pytest.raises(ValueError, match="both"):
        auc(np.ones(3), np.arange(3.0))


def test_logloss_matches_sklearn():
    labels = np.array([1, 0, 1, 1])
    probs = np.array([0.8, 0.3, 0.6, 0.99])
    assert logloss(labels, probs) == pytest.approx(log_loss(labels, probs))


def test_gauc_weights_groups_by_size_and_skips_single_class_groups():
    groups = np.array([1, 1, 1, 2, 2, 3, 3])
    labels = np.array([1, 0, 0, 0, 1, 1, 1])
    scores = np.array([0.9, 0.1, 0.95, 0.6, 0.4, 0.3, 0.2])
    # group 1: auc 0.5 (3 rows); group 2: auc 0 (2 rows); group 3: one class, skipped
    assert gauc(groups, labels, scores) == pytest.approx((0.5 * 3 + 0.0 * 2) / 5)


def test_gauc_equals_per_group_sklearn_average():
    rng = np.random.default_rng(1)
    groups = rng.integers(0, 30, 2000)
    labels = rng.integers(0, 2, 2000)
    scores = np.round(rng.normal(size=2000) + labels * 0.5, 1)
    expected, weights = [], []
    for g in np.unique(groups):
        m = groups == g
        if 0 < labels[m].sum() < m.sum():
            expected.append(roc_auc_score(labels[m], scores[m]))
            weights.append(m.sum())
    assert gauc(groups, labels, scores) == pytest.approx(np.average(expected, weights=weights))


def test_rank_metrics_hand_computed():
    ranks = np.array([0, 3, 10, 1])  # 0-based ranks of the held-out item
    m = rank_metrics(ranks, 10)
    assert m["hr@10"] == pytest.approx(3 / 4)
    assert m["ndcg@10"] == pytest.approx((1 + 1 / np.log2(5) + 0 + 1 / np.log2(3)) / 4)
    assert m["mrr@10"] == pytest.approx((1 + 1 / 4 + 0 + 1 / 2) / 4)


def test_pairs_of_users_by_hand():
    from components.evaluate import pairs_of_users

    # rows of users 7, 3, 7, 9; user 7 has values 10, 11; user 3 has 12; user 9 none
    rows, values = pairs_of_users(np.array([7, 3, 7, 9]), np.array([7, 3, 7]), np.array([10, 12, 11]))
    assert rows.tolist() == [0, 0, 1, 2, 2] and values.tolist() == [10, 11, 12, 10, 11]
