"""Exact evaluation scoring: full ranking with exclusions, interests, groups, and the sampled protocol."""

import numpy as np
import pytest
import torch

from rechub_core.metrics import rank_metrics, topk_metrics
from rechub_core.scoring import full_ranking, interest_scores, sample_unseen_columns, sampled_ranks


def test_full_ranking_hand_computed_with_exclusions():
    users = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    items = np.array([[3, 0], [2, 1], [1, 2], [0, 3]], np.float32)  # user 0 prefers 0>1>2>3, user 1 the reverse
    top = full_ranking(users, items, 2, exclude_rows=np.array([0, 1]), exclude_cols=np.array([0, 2]))
    np.testing.assert_array_equal(top, [[1, 2], [3, 1]])
    m = topk_metrics(top, np.array([[2], [0]]), 2)  # user 0's target at rank 2, user 1's not retrieved
    assert m["recall@2"] == pytest.approx(0.5) and m["mrr@2"] == pytest.approx(0.25)
    assert m["precision@2"] == pytest.approx(0.25) and m["ndcg@2"] == pytest.approx(0.5 / np.log2(3))


def test_full_ranking_pads_when_too_few_items_remain():
    top = full_ranking(np.ones((1, 2), np.float32), np.eye(2, dtype=np.float32), 2,
                       exclude_rows=np.array([0]), exclude_cols=np.array([1]))
    np.testing.assert_array_equal(top, [[0, -1]])
    small = full_ranking(np.ones((1, 2), np.float32), np.eye(2, dtype=np.float32), 3,
                         exclude_rows=np.array([], np.int64), exclude_cols=np.array([], np.int64))
    np.testing.assert_array_equal(small, [[0, 1, -1]])  # a catalogue smaller than k: k columns, -1 padded
    assert topk_metrics(small, np.array([[1]]), 3)["ndcg@3"] == pytest.approx(1 / np.log2(3))


def test_full_ranking_equals_brute_force_in_chunks():
    rng = np.random.default_rng(0)
    users, items = rng.normal(size=(50, 4)).astype(np.float32), rng.normal(size=(30, 4)).astype(np.float32)
    rows, cols = rng.integers(0, 50, 100), rng.integers(0, 30, 100)
    scores = users @ items.T
    scores[rows, cols] = -np.inf
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(full_ranking(users, items, 5, exclude_rows=rows, exclude_cols=cols, chunk=7), expected)


def test_multi_interest_scores_are_the_best_interest_or_the_groups_slot():
    users = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]])  # (1, K=2, D=2)
    items = torch.tensor([[1.0, 1.0], [3.0, 0.0], [0.0, 1.0]])
    torch.testing.assert_close(interest_scores(users, items), torch.tensor([[2.0, 3.0, 2.0]]))
    slots = torch.tensor([0, 1, -1])  # item 0 served by interest 0, item 1 by interest 1, item 2 by none
    torch.testing.assert_close(interest_scores(users, items, slots), torch.tensor([[1.0, 0.0, float("-inf")]]))


def test_sampled_negatives_are_uniform_distinct_and_unseen():
    n_users, n_items = 2000, 20
    rows = np.repeat(np.arange(n_users), 2)
    cols = np.tile([3, 7], n_users)  # every user has seen items 3 and 7
    neg = sample_unseen_columns(n_users, n_items, 5, exclude_rows=rows, exclude_cols=cols,
                                generator=torch.Generator().manual_seed(0))
    assert neg.shape == (n_users, 5)
    assert not np.isin(neg, [3, 7]).any()
    assert all(len(set(r)) == 5 for r in neg[:100])  # without replacement
    freq = np.bincount(neg.ravel(), minlength=n_items) / neg.size
    expected = np.where(np.isin(np.arange(n_items), [3, 7]), 0, 1 / 18)
    assert 0.5 * np.abs(freq - expected).sum() < 0.02


def test_too_few_unseen_items_is_an_error():
    with pytest.raises(ValueError, match="items left"):
        sample_unseen_columns(1, 3, 3, exclude_rows=np.array([0]), exclude_cols=np.array([1]),
                              generator=torch.Generator())
    # an item excluded several times (re-consumed, or also the target) is one item, not several
    neg = sample_unseen_columns(1, 5, 3, exclude_rows=np.zeros(4, np.int64), exclude_cols=np.full(4, 2),
                                generator=torch.Generator())
    assert neg.shape == (1, 3) and 2 not in neg[0]


def test_sampled_ranks_hand_computed_and_ties_count_against_the_target():
    users = np.array([[1.0], [1.0], [0.0]], np.float32)
    items = np.array([[5.0], [1.0], [3.0], [4.0]], np.float32)  # scores = the value (0 for user 2)
    targets = np.array([2, 0, 1])
    negatives = np.array([[1, 3], [1, 2], [0, 3]])
    ranks = sampled_ranks(users, items, targets, negatives)
    np.testing.assert_array_equal(ranks, [1, 0, 2])  # user 2 scores everything 0: last
    assert rank_metrics(ranks, 1)["hr@1"] == pytest.approx(1 / 3)
