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


def test_streaming_frequency_estimates_appearances_per_step():
    """Yi et al.'s estimator: an item in a batch with probability p per step is estimated at about p."""
    import torch

    from rechub_core.data.sampling import StreamingFrequency

    g = torch.Generator().manual_seed(0)
    p = torch.tensor([0.0, 0.9, 0.5, 0.2, 0.05])  # id 0 never appears
    estimator = StreamingFrequency(len(p), alpha=0.01)
    for _ in range(4000):
        present = torch.rand(len(p), generator=g) < p
        estimator.update(torch.nonzero(present).squeeze(1))
    estimate = estimator.log_frequency(torch.arange(1, 5)).exp()
    torch.testing.assert_close(estimate, p[1:], rtol=0.15, atol=0.0)



def test_streaming_frequency_counts_repeats_within_a_step():
    """An item appearing k times in every batch is estimated at about k appearances per step."""
    import torch

    from rechub_core.data.sampling import StreamingFrequency

    estimator = StreamingFrequency(4, alpha=0.01)
    for _ in range(2000):
        estimator.update(torch.tensor([1, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3]))
    torch.testing.assert_close(estimator.log_frequency(torch.tensor([1, 2, 3])).exp(),
                               torch.tensor([1.0, 3.0, 8.0]), rtol=0.06, atol=0.0)


def test_streaming_frequency_buckets_by_modulo_when_smaller_than_the_vocabulary():
    import torch

    from rechub_core.data.sampling import StreamingFrequency

    estimator = StreamingFrequency(4)
    estimator.update(torch.tensor([5]))  # bucket 1
    assert estimator.last[1] == 1 and estimator.last[0] == 0
    with pytest.raises(ValueError):
        StreamingFrequency(0)


@pytest.mark.parametrize("correction", [True, False])
def test_logq_correction_removes_the_popularity_bias_of_in_batch_negatives(correction):
    """Planted: positives drawn from a Zipf popularity, no user signal. The in-batch softmax then
    learns item scores; with log-Q correction they recover log-popularity (slope about 1), without it
    popular items are penalised as negatives as often as they are rewarded as positives (slope about 0)."""
    import torch

    from rechub_core.training.losses import sampled_softmax

    g = torch.Generator().manual_seed(0)
    n, batch = 30, 256
    p = 1.0 / torch.arange(1, n + 1, dtype=torch.float64)
    p = (p / p.sum()).float()
    bias = torch.zeros(n, 1, requires_grad=True)
    opt = torch.optim.Adam([bias], lr=0.05)
    for _ in range(600):
        ids = torch.multinomial(p, batch, replacement=True, generator=g)
        logq = torch.log(batch * p[ids]) if correction else None
        loss = sampled_softmax(torch.ones(batch, 1), bias[ids], ids, temperature=1.0, pos_logq=logq)
        opt.zero_grad()
        loss.backward()
        opt.step()
    x, y = torch.log(p), bias.detach().squeeze(1)
    slope = float(((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum())
    if correction:
        assert 0.8 < slope < 1.2, slope
    else:
        assert abs(slope) < 0.3, slope
