"""SimHash signatures and retrieval of the behaviours nearest to the target in Hamming distance.

ETA (Chen et al., "End-to-End User Behavior Retrieval in Click-Through Rate
Prediction Model", arXiv 2108.04468, 2021, Sec. 3.2) replaces the inner
product between the target and each of a user's long-term behaviours by a
locality-sensitive hash: SimHash (Charikar, STOC 2002) projects an embedding
``e`` with a fixed random Gaussian matrix ``R`` (``dim × m``) and keeps the
signs, ``sig(e) = [R^T e > 0]`` (``m`` bits). Nearby embeddings (small angle)
agree on most bits, so the Hamming distance between the target's and a
behaviour's signatures ranks behaviours by similarity, and the ``k`` nearest
are kept for target attention.

``R`` is a buffer, drawn once at construction from a seeded generator (and
saved with the model, so a reloaded model hashes alike). Signatures and
ranking are integer work with no gradient: the retrieved behaviours' indices
come out, and a model re-embeds them so that gradients reach exactly the
embeddings it attends to. The embeddings the hash reads are the model's own and
change with training (ETA's end-to-end retrieval); the hash itself is not
trained. Memory stays at the size of the ``(B, L, dim)`` embeddings: the
projection is ``(B, L, m)`` and the distances ``(B, L)``.
"""

from __future__ import annotations

import torch
from torch import nn

from rechub_core.layers.behavior_search import top_k


class SimHash(nn.Module):
    """``signatures(x) -> (..., m)`` bits; ``forward(target, behaviors, mask, k) -> ((B, k) indices, (B, k) valid)``.

    >>> h = SimHash(4, bits=8, seed=0)
    >>> x = torch.randn(2, 6, 4)
    >>> idx, valid = h(x[:, -1], x, torch.ones(2, 6, dtype=torch.bool), k=3)
    >>> idx.shape, idx[:, 0].tolist(), bool(valid.all())  # each target (the last behaviour) is its own nearest
    (torch.Size([2, 3]), [5, 5], True)
    """

    def __init__(self, dim: int, bits: int, seed: int = 0):
        super().__init__()
        if dim < 1 or bits < 1:
            raise ValueError(f"dim and bits must be at least 1, got {dim} and {bits}")
        generator = torch.Generator().manual_seed(seed)
        self.register_buffer("projection", torch.randn(dim, bits, generator=generator))  # (dim, m)
        self.bits = bits

    def signatures(self, x: torch.Tensor) -> torch.Tensor:
        """Sign bits of the random projection, ``(..., dim) -> (..., m)`` bool (a zero projection counts as 0)."""
        return (x @ self.projection.to(x.dtype)) > 0

    def distances(self, target: torch.Tensor, behaviors: torch.Tensor) -> torch.Tensor:
        """Hamming distances ``(B, L)`` between the signatures of ``target (B, dim)`` and ``behaviors (B, L, dim)``.

        With bits as signs ``s = 2 b - 1`` (±1), two signatures agree on ``(m + s_t·s_j) / 2`` bits, so
        ``hamming = (m - s_t·s_j) / 2``: one batched product, nothing of size ``L × m`` besides the signatures.
        """
        t = self.signatures(target).to(behaviors.dtype) * 2 - 1  # (B, m), ±1
        s = self.signatures(behaviors).to(behaviors.dtype) * 2 - 1  # (B, L, m), ±1
        agreement = torch.bmm(s, t.unsqueeze(-1)).squeeze(-1)  # (B, L)
        return (self.bits - agreement) / 2

    @torch.no_grad()
    def forward(
        self, target: torch.Tensor, behaviors: torch.Tensor, mask: torch.Tensor, k: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``k`` real behaviours nearest to ``target``: positions ``(B, k)`` and whether each is real ``(B, k)``.

        Smallest Hamming distance first; among equal distances the more recent
        (later, the sequences being left-padded) first. Padding ranks after every
        real behaviour, so it is picked only when a row has fewer than ``k`` real
        behaviours, and those picks come back not valid. ``k`` is capped at the
        sequence length.
        """
        length = behaviors.shape[1]
        age = torch.arange(length - 1, -1, -1, device=behaviors.device, dtype=behaviors.dtype)  # (L,): 0 = most recent
        # one exact float key (distance ≤ m, age < L): the smaller distance first, then the more recent
        key = self.distances(target, behaviors) * length + age  # (B, L)
        return top_k(-key, mask, k)
