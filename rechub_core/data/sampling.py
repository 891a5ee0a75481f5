"""Negative sampling, vectorised: uniform or popularity (count ** power) over item ids.

Item id 0 is padding and is never drawn. Samplers take a numpy ``Generator``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np


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
