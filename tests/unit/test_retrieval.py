"""ComiRec's retrieval-time aggregation: merging per-interest results and the controllable greedy
selection, against hand-computed cases and a per-user reference."""

import numpy as np
import pytest

from rechub_core.retrieval import controllable_aggregation, merge_interests

# item id -> category: 10, 11 are category 0; 12 is 1; 13 is 2
CATEGORIES = np.zeros(20, dtype=np.int64)
CATEGORIES[[12, 13]] = [1, 2]
ITEMS = np.array([[10, 11, 12, 13]])
SCORES = np.array([[1.0, 0.9, 0.5, 0.2]])


@pytest.mark.parametrize(
    "lam,expected",
    [
        (0.0, [10, 11, 12]),
        (0.3, [10, 11, 12]),  # step 2: 11 gains 0.9 > 12's 0.5 + 0.3; step 3: 12 gains 1.1 > 13's 0.8
        (0.5, [10, 12, 11]),  # step 2: 12 gains 1.0 > 0.9; step 3: 11 gains 0.9 + 0.5 = 1.4 > 13's 0.2 + 1.0
        (1.0, [10, 12, 13]),  # step 3: 13 gains 0.2 + 2 = 2.2 > 11's 0.9 + 1 = 1.9
    ],
)
def test_hand_computed_greedy_steps(lam, expected):
    assert controllable_aggregation(ITEMS, SCORES, CATEGORIES, 3, lam).tolist() == [expected]


def test_missing_candidates_duplicates_and_short_rows_pad_with_minus_one():
    items = np.array([[5, -1, -1, -1], [7, 7, 8, -1], [-1, -1, -1, -1]])
    scores = np.array([[0.1, 9.0, 9.0, 9.0], [3.0, 2.0, 1.0, 9.0], [1.0, 1.0, 1.0, 1.0]])
    out = controllable_aggregation(items, scores, CATEGORIES, 3, 0.5)
    assert out.tolist() == [[5, -1, -1], [7, 8, -1], [-1, -1, -1]]
    assert controllable_aggregation(items, scores, CATEGORIES, 0, 0.5).shape == (3, 0)


def reference(items, scores, categories, n, lam):
    """The greedy procedure, one user at a time, with Python sets."""
    out = np.full((len(items), n), -1)
    for u in range(len(items)):
        chosen: list[int] = []
        for step in range(n):
            best, best_gain = None, -np.inf
            for c in range(items.shape[1]):
                i = items[u, c]
                if i < 0 or i in chosen:
                    continue
                gain = scores[u, c] + lam * sum(categories[j] != categories[i] for j in chosen)
                if gain > best_gain:
                    best, best_gain = i, gain
            if best is None:
                break
            chosen.append(best)
            out[u, step] = best
    return out


@pytest.mark.parametrize("lam", [0.0, 0.05, 0.3, 2.0])
def test_vectorised_equals_the_per_user_reference(lam):
    rng = np.random.default_rng(0)
    categories = rng.integers(0, 4, 50)
    items = np.stack([rng.permutation(np.arange(1, 50))[:12] for _ in range(30)])  # (30, 12), distinct ids
    items[rng.random(items.shape) < 0.2] = -1
    scores = rng.random(items.shape)
    out = controllable_aggregation(items, scores, categories, 8, lam)
    assert out.shape == (30, 8) and out.dtype == np.int64
    np.testing.assert_array_equal(out, reference(items, scores, categories, 8, lam))


def test_lam_zero_is_ranking_by_score():
    rng = np.random.default_rng(1)
    items = np.stack([rng.permutation(np.arange(1, 40))[:15] for _ in range(10)])  # (10, 15)
    scores = rng.normal(size=items.shape)
    ranked = np.take_along_axis(items, np.argsort(-scores, axis=1)[:, :6], axis=1)
    np.testing.assert_array_equal(controllable_aggregation(items, scores, rng.integers(0, 3, 40), 6, 0.0), ranked)


def test_larger_lam_raises_category_diversity_on_a_planted_example():
    # ten strong candidates all of category 0, then ten weaker ones of ten other categories
    categories = np.concatenate([np.zeros(11, dtype=np.int64), np.arange(1, 11)])  # ids 0..20
    items = np.tile(np.arange(1, 21), (3, 1))  # (3, 20): three users, same candidates
    scores = np.tile(np.concatenate([np.linspace(1.0, 0.9, 10), np.linspace(0.5, 0.4, 10)]), (3, 1))
    distinct = [
        len(set(categories[controllable_aggregation(items, scores, categories, 10, lam)[0]]))
        for lam in (0.0, 0.05, 0.1, 1.0)
    ]
    assert distinct[0] == 1 and distinct[-1] == 10
    assert all(a < b for a, b in zip(distinct, distinct[1:]))


def test_merge_interests_keeps_each_item_once_with_its_best_score():
    items = np.array([[[4, 2, -1], [2, 9, 4]]])  # (1, K=2, N=3)
    scores = np.array([[[0.5, 0.1, 7.0], [0.8, 0.3, 0.2]]])
    merged, merged_scores = merge_interests(items, scores)
    assert merged.tolist() == [[2, 4, 9, -1, -1, -1]]
    np.testing.assert_allclose(merged_scores[0, :3], [0.8, 0.5, 0.3])
    assert np.isneginf(merged_scores[0, 3:]).all()


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="must both be"):
        controllable_aggregation(ITEMS, SCORES[:, :2], CATEGORIES, 2, 0.1)
    with pytest.raises(ValueError, match="lam"):
        controllable_aggregation(ITEMS, SCORES, CATEGORIES, 2, -0.1)
    with pytest.raises(ValueError, match="categories"):
        controllable_aggregation(ITEMS + 10, SCORES, CATEGORIES, 2, 0.1)
    with pytest.raises(ValueError, match="n must be"):
        controllable_aggregation(ITEMS, SCORES, CATEGORIES, -1, 0.1)
    with pytest.raises(ValueError, match=r"\(U, K, N\)"):
        merge_interests(ITEMS, SCORES)
