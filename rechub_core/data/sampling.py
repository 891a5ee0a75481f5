"""Negative sampling, vectorised: uniform or popularity (count ** power) over item ids.

Item id 0 is padding and is never drawn. Samplers take a numpy ``Generator``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch


def item_distribution(
    counts: np.ndarray, kind: Literal["uniform", "popularity"], power: float = 0.75
) -> np.ndarray:
    """Sampling probabilities over ids ``0..len(counts)-1`` (id 0 gets 0).

    ``popularity`` is ``count ** power`` normalised (word2vec's 0.75 by default);
    ``uniform`` is flat over ids ``1..``.
    """
    counts = np.asarray(counts, dtype=np.float64)
    if len(counts) < 2:
        raise ValueError("need at least one item besides the padding id 0")
    if kind == "uniform":
        weights = np.ones_like(counts)
    elif kind == "popularity":
        weights = np.power(counts, power)
        if weights[1:].sum() == 0:
            raise ValueError("popularity sampling needs at least one item with a positive count")
    else:
        raise ValueError(f"unknown distribution {kind!r}; choose 'uniform' or 'popularity'")
    weights[0] = 0.0
    return weights / weights.sum()


def sample_negatives(
    probs: np.ndarray,
    positives: np.ndarray,
    num_negatives: int,
    rng: np.random.Generator,
    max_redraws: int = 10,
) -> np.ndarray:
    """``(len(positives), num_negatives)`` ids drawn from ``probs``.

    A draw equal to its row's positive is redrawn (up to ``max_redraws``
    rounds, vectorised over all such draws); any left over are masked by the
    loss as accidental hits.
    """
    cdf = np.cumsum(probs)
    cdf /= cdf[-1]

    def draw(size) -> np.ndarray:
        return np.minimum(np.searchsorted(cdf, rng.uniform(size=size), side="right"), len(probs) - 1)

    negatives = draw((len(positives), num_negatives))
    for _ in range(max_redraws):
        hits = negatives == positives[:, None]
        n_hits = int(hits.sum())
        if n_hits == 0:
            break
        negatives[hits] = draw(n_hits)
    return negatives


class StreamingFrequency:
    """Streaming estimate of how often each item appears in a batch (Yi et al., RecSys 2019, Algorithm 2).

    Per bucket, ``last[h]`` is the step at which it was last seen and
    ``gap[h]`` a moving average of the steps between sightings,
    ``gap <- (1 - alpha) gap + alpha (t - last)``; the estimated number of
    appearances per step is ``1 / gap``. The paper hashes unbounded ids into
    ``num_buckets``; ids here are contiguous, so the bucket is the id itself
    unless ``num_buckets`` is smaller (then ``id % num_buckets``). The paper
    starts every average at 0; here a bucket's first sighting starts it at the
    steps elapsed so far, so short runs are not dominated by the start-up.
    """

    def __init__(self, num_buckets: int, alpha: float = 0.01):
        if num_buckets < 1 or not 0 < alpha <= 1:
            raise ValueError(f"need num_buckets >= 1 and 0 < alpha <= 1, got {num_buckets}, {alpha}")
        self.num_buckets, self.alpha = num_buckets, alpha
        self.last = torch.zeros(num_buckets, dtype=torch.float64)
        self.gap = torch.zeros(num_buckets, dtype=torch.float64)
        self.step = 0

    def update(self, ids: torch.Tensor) -> None:
        """Record one step (batch) whose items are ``ids``.

        The paper updates item by item; a bucket hit ``k`` times in one step gets
        its gap since the last step, then ``k - 1`` gaps of 0, so ``1 / gap``
        estimates appearances per step even when they exceed one.
        """
        self.step += 1
        buckets, counts = torch.unique(ids % self.num_buckets, return_counts=True)
        seen_gap = self.step - self.last[buckets]
        averaged = (1 - self.alpha) * self.gap[buckets] + self.alpha * seen_gap
        # a first sighting starts the average at its own gap (the steps since the start), not at alpha * gap
        first = torch.where(self.last[buckets] > 0, averaged, seen_gap)
        self.gap[buckets] = first * (1 - self.alpha) ** (counts - 1).to(torch.float64)
        self.last[buckets] = self.step

    def log_frequency(self, ids: torch.Tensor) -> torch.Tensor:
        """log of the estimated appearances per step of ``ids`` (each must have been seen)."""
        return -torch.log(self.gap[ids % self.num_buckets]).to(torch.float32)
