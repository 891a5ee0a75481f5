import numpy as np
import pytest

from rechub_core import index as ann


def clustered(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(20, dim))
    x = centres[rng.integers(20, size=n)] + 0.3 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_flat_equals_brute_force_inner_product():
    items, queries = clustered(500, 16, 0), clustered(50, 16, 1)
    scores, positions = ann.search(ann.build(items, "flat"), queries, 10)
    brute = np.argsort(-(queries @ items.T), axis=1, kind="stable")[:, :10]
    np.testing.assert_array_equal(positions, brute)
    np.testing.assert_allclose(scores, np.take_along_axis(queries @ items.T, brute, axis=1), rtol=1e-5)


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_indexes_recall_on_clustered_vectors(kind):
    items, queries = clustered(3000, 16, 2), clustered(200, 16, 3)
    index = ann.build(items, kind, ivf_nlist=16, ivf_nprobe=8)
    recall = ann.recall_vs_exact(index, ann.build(items, "flat"), queries, 20)
    assert recall > 0.9


def test_hnsw_returns_k_results_even_when_k_exceeds_ef_search():
    items = clustered(400, 8, 4)
    index = ann.build(items, "hnsw", ef_search=16)
    _, positions = ann.search(index, items[:5], 100)
    assert positions.shape == (5, 100) and (positions >= 0).all()


def test_save_and_load_round_trip(tmp_path):
    items = clustered(100, 8, 5)
    index = ann.build(items, "hnsw")
    ann.save(index, tmp_path / "i.faiss")
    again = ann.load(tmp_path / "i.faiss")
    np.testing.assert_array_equal(ann.search(again, items[:3], 5)[1], ann.search(index, items[:3], 5)[1])


def test_search_interests_merges_by_score_and_drops_duplicates():
    items = np.eye(4, dtype=np.float32)  # item i points along axis i
    index = ann.build(items, "flat")
    # one user, two interests: axis 0 (strongly) and a mix of axes 0/1
    queries = np.array([[[1.0, 0, 0, 0], [0.6, 0.8, 0, 0]]], dtype=np.float32)
    scores, merged = ann.search_interests(index, queries, 2)
    # scores: item0=1.0 (interest 1), item1=0.8, item0=0.6 (duplicate), item2/3=0
    kept = [p for p in merged[0].tolist() if p >= 0]
    assert kept[:2] == [0, 1] and kept.count(0) == 1
    np.testing.assert_allclose(scores[0, :2], [1.0, 0.8], rtol=1e-6)
    assert np.isneginf(scores[merged < 0]).all()


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_grouped_interests_search_only_their_group(kind):
    rng = np.random.default_rng(0)
    items = rng.normal(size=(400, 8)).astype(np.float32)
    groups = np.arange(400) % 4  # position -> group
    index = ann.build(items, kind, ivf_nlist=4, ivf_nprobe=4)
    queries = rng.normal(size=(5, 3, 8)).astype(np.float32)  # interests for groups 2, 0, 3
    interest_groups = np.array([2, 0, 3])
    scores, positions = ann.search_interests(index, queries, 10, interest_groups=interest_groups, item_groups=groups)
    assert positions.shape == (5, 30) and (positions >= 0).all()
    found = groups[positions]
    assert set(np.unique(found)) <= {0, 2, 3}
    if kind == "flat":  # exact: interest j's results are the top of its own group
        for j, g in enumerate(interest_groups):
            member = np.flatnonzero(groups == g)
            best = member[np.argsort(-(queries[:, j] @ items[member].T), axis=1)[:, :10]]
            for u in range(5):
                assert set(best[u]) <= set(positions[u])


def test_unknown_kind_is_rejected():
    with pytest.raises(ValueError, match="unknown index kind"):
        ann.build(np.zeros((3, 2), np.float32), "annoy")
