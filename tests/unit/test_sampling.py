"""Sampler statistics: empirical frequencies match the configured distribution."""

import numpy as np
import pytest

from rechub_core.data.sampling import item_distribution, sample_negatives


def test_popularity_distribution_is_count_to_the_power():
    counts = np.array([0, 1, 16, 81, 0])
    p = item_distribution(counts, "popularity", 0.75)
    expected = np.array([0, 1, 8, 27, 0]) / 36
    np.testing.assert_allclose(p, expected)


def test_uniform_distribution_excludes_padding():
    p = item_distribution(np.array([5, 0, 3, 1]), "uniform")
    np.testing.assert_allclose(p, [0, 1 / 3, 1 / 3, 1 / 3])


@pytest.mark.parametrize("kind", ["uniform", "popularity"])
def test_empirical_frequencies_match(kind):
    rng = np.random.default_rng(0)
    counts = rng.zipf(1.5, size=50).astype(float)
    counts[0] = 0
    probs = item_distribution(counts, kind)
    positives = np.zeros(20_000, dtype=np.int64)  # id 0 never drawn, so no redraws
    negs = sample_negatives(probs, positives, 10, rng)
    freq = np.bincount(negs.ravel(), minlength=len(probs)) / negs.size
    # total variation distance small for 200k draws
    assert 0.5 * np.abs(freq - probs).sum() < 0.01
    assert (negs > 0).all()


def test_accidental_hits_are_redrawn():
    rng = np.random.default_rng(1)
    probs = item_distribution(np.array([0, 10, 5, 5]), "popularity", 1.0)  # item 1 half the mass
    positives = np.ones(1000, dtype=np.int64)
    negs = sample_negatives(probs, positives, 5, rng, max_redraws=50)
    assert (negs != 1).all()


def test_sampler_is_deterministic_given_the_generator():
    probs = item_distribution(np.arange(10.0), "popularity")
    a = sample_negatives(probs, np.zeros(5, dtype=np.int64), 3, np.random.default_rng(7))
    b = sample_negatives(probs, np.zeros(5, dtype=np.int64), 3, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
