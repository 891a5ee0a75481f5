"""SINE: sparse-interest network for sequential recommendation.

Tan, Zhang, Yao, Liu, Zhou, Yang & Hu, "Sparse-Interest Network for
Sequential Recommendation", WSDM 2021, Sec. 3. X is the user's left-padded
history: item embeddings plus trainable positional embeddings, zero at
padding. C ``(L, D)`` is a learned pool of L concepts.

- Concept activation (Sec. 3.2.1): self-attentive pooling
  ``a = softmax(tanh(X W1) W2)`` over the real positions, ``z_u = a^T X``;
  ``s_u = C z_u``; the top-K concepts ``idx = topk(s_u, K)`` are activated as
  ``C_u = C[idx] * sigmoid(s_u[idx])``.
- Intention assignment (Sec. 3.2.2):
  ``P_{k|t} = softmax_k(LayerNorm1(X_t W3) . LayerNorm2(C_u,k))``.
- Attention weighting (Sec. 3.2.3): ``P_{t|k} = softmax_t(tanh(X W_{k,1}) W_{k,2})``,
  one attention head per activated concept, over the real positions.
- Interest embeddings (Sec. 3.2.4): ``phi_k = LayerNorm3(sum_t P_{k|t} P_{t|k} X_t)``.
- Interest aggregation (Sec. 3.3): the intention predicted at each position,
  ``X_hat = P_{k|t} C_u``, attention-pooled and layer-normed gives
  ``C_apt = LayerNorm4(softmax_t(tanh(X_hat W4) W5)^T X_hat)``; the user vector
  is ``e_u = sum_k softmax_k(C_apt . phi_k / tau) phi_k``, ``(B, D)``.
- Training (Sec. 3.4): sampled softmax (``Listwise``) plus ``regularization()``,
  the covariance regulariser on the concept pool,
  ``lambda * 0.5 * (||M||_F^2 - ||diag M||^2)`` with ``M = (C - Cbar)(C - Cbar)^T / D``
  ``(L, L)`` the covariance between concepts (each centred over its D entries).

The item vector is the item's embedding, from the table the history reads.
Padding positions take no part in any attention, assignment or pooling; an
empty history gives ``e_u = LayerNorm3(0)`` (its bias), whatever concepts the
all-zero scores activate. The concept pool is a dense parameter, not an
``nn.Embedding``: every step reads all of it (the scores s_u and the
regulariser), so it is trained with dense gradients.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from rechub_core.features import Schema
from rechub_core.layers import FeatureEmbedding
from rechub_core.models.matching.inputs import item_and_history


@dataclass
class SINEConfig:
    name: Literal["sine"] = "sine"
    embed_dim: int = 64
    num_concepts: int = 100  # L, the concept pool
    num_interests: int = 4  # K, concepts activated per user
    attention_dim: int = 64  # hidden width of the self-attentive layers (W1, W_{k,1}, W4)
    temperature: float = 0.1  # tau of the aggregation softmax
    covariance_weight: float = 0.1  # lambda of the covariance regulariser

    def __post_init__(self):
        for name in ("embed_dim", "num_concepts", "num_interests", "attention_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.num_interests > self.num_concepts:
            raise ValueError(
                f"num_interests ({self.num_interests}) cannot exceed num_concepts ({self.num_concepts}): "
                "the K interests are activated out of the L concepts"
            )
        if not self.temperature > 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")
        if self.covariance_weight < 0:
            raise ValueError(f"covariance_weight must be >= 0, got {self.covariance_weight}")


def masked_softmax(logits: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    """Softmax over the ``mask``-ed entries along ``dim``, 0 elsewhere (all 0 if none is)."""
    logits = logits.masked_fill(~mask, torch.finfo(logits.dtype).min)
    return torch.softmax(logits, dim=dim) * mask.to(logits.dtype)


class AttentionHeads(nn.Module):
    """``softmax_t(tanh(X W_{h,1}) W_{h,2})`` for ``heads`` heads, each with its own weights.

    ``(B, L, D)`` with a ``(B, L)`` valid mask → ``(B, H, L)``, a distribution over the valid positions.
    """

    def __init__(self, dim: int, hidden: int, heads: int):
        super().__init__()
        self.heads, self.hidden = heads, hidden
        self.w1 = nn.Linear(dim, heads * hidden, bias=False)  # W_{h,1} side by side
        self.w2 = nn.Parameter(torch.randn(heads, hidden) * hidden**-0.5)  # W_{h,2}, (H, d_a)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, length, _ = x.shape
        h = torch.tanh(self.w1(x)).reshape(b, length, self.heads, self.hidden)  # (B, L, H, d_a)
        logits = torch.einsum("blhd,hd->bhl", h, self.w2)  # (B, H, L)
        return masked_softmax(logits, mask.unsqueeze(1), dim=-1)  # (B, H, L)


class SINE(nn.Module):
    """``user_embedding(batch) -> (B, D)``, ``item_embedding(batch) -> (N, D)``, score = dot product.

    >>> from rechub_core.features import SequenceFeature, SparseFeature
    >>> schema = Schema({"user": (SequenceFeature("hist", 10, 4, shares="item_id"),),
    ...                  "item": (SparseFeature("item_id", 10),)})
    >>> model = SINE(schema, SINEConfig(embed_dim=8, num_concepts=6, num_interests=2)).eval()
    >>> model.user_embedding({"hist": torch.tensor([[0, 3, 5, 7]])}).shape
    torch.Size([1, 8])
    """

    def __init__(self, schema: Schema, config: SINEConfig):
        super().__init__()
        self.config = config
        items, history = item_and_history(schema, "SINE")
        self.history_name = history.name
        self.max_len = history.max_len
        d, k = config.embed_dim, config.num_interests
        self.embedding = FeatureEmbedding((items, history), d)  # shared item table
        self.positions = nn.Embedding(history.max_len, d)
        nn.init.normal_(self.positions.weight, std=0.01)
        self.concepts = nn.Parameter(torch.randn(config.num_concepts, d) * d**-0.5)  # C, (L, D)
        self.activation = AttentionHeads(d, config.attention_dim, 1)  # W1, W2
        self.w3 = nn.Linear(d, d, bias=False)
        self.norm1, self.norm2, self.norm3, self.norm4 = (nn.LayerNorm(d) for _ in range(4))
        self.weighting = AttentionHeads(d, config.attention_dim, k)  # W_{k,1}, W_{k,2}
        self.aggregation = AttentionHeads(d, config.attention_dim, 1)  # W4, W5

    def sequence(self, ids: torch.Tensor) -> torch.Tensor:
        """X: item plus positional embeddings of left-padded ids ``(B, L) -> (B, L, D)``, zero at padding."""
        length = ids.shape[1]
        if length > self.max_len:
            raise ValueError(f"sequence length {length} exceeds the history's max_len {self.max_len}")
        pos = torch.arange(self.max_len - length, self.max_len, device=ids.device)  # (L,)
        x = self.embedding.lookup(self.history_name, ids) + self.positions(pos)  # (B, L, D)
        return x * (ids > 0).unsqueeze(-1).to(x.dtype)

    def activate(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Concept activation: the K concepts' indices ``(B, K)`` and gated vectors C_u ``(B, K, D)``."""
        z = (self.activation(x, mask) @ x).squeeze(1)  # (B, 1, L) @ (B, L, D) -> (B, D): z_u
        scores = z @ self.concepts.T  # (B, L_c): s_u
        top, idx = scores.topk(self.config.num_interests, dim=-1)  # (B, K), (B, K)
        return idx, F.embedding(idx, self.concepts) * torch.sigmoid(top).unsqueeze(-1)  # (B, K, D)

    def user_embedding(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        ids = batch[self.history_name]  # (B, L)
        mask = ids > 0  # (B, L)
        x = self.sequence(ids)  # (B, L, D)
        _, c_u = self.activate(x, mask)  # (B, K, D)
        assign = torch.einsum("bld,bkd->blk", self.norm1(self.w3(x)), self.norm2(c_u))  # (B, L, K)
        p_k_t = torch.softmax(assign, dim=-1) * mask.unsqueeze(-1).to(x.dtype)  # (B, L, K): P_{k|t}, 0 at padding
        p_t_k = self.weighting(x, mask)  # (B, K, L): P_{t|k}
        phi = self.norm3((p_k_t.transpose(1, 2) * p_t_k) @ x)  # (B, K, L) @ (B, L, D) -> (B, K, D)
        x_hat = p_k_t @ c_u  # (B, L, K) @ (B, K, D) -> (B, L, D): predicted intention per position
        c_apt = self.norm4((self.aggregation(x_hat, mask) @ x_hat).squeeze(1))  # (B, 1, L) @ (B, L, D) -> (B, D)
        weights = torch.softmax(torch.einsum("bd,bkd->bk", c_apt, phi) / self.config.temperature, dim=-1)  # (B, K)
        return (weights.unsqueeze(-1) * phi).sum(dim=1)  # (B, D): e_u

    def regularization(self) -> torch.Tensor:
        """``lambda * 0.5 * (||M||_F^2 - ||diag M||^2)``, M the ``(L, L)`` covariance between the concepts."""
        c = self.concepts - self.concepts.mean(dim=1, keepdim=True)  # (L, D): each concept centred
        m = c @ c.T / c.shape[1]  # (L, L)
        return self.config.covariance_weight * 0.5 * (m.pow(2).sum() - m.diagonal().pow(2).sum())

    def item_embedding(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.embedding.lookup("item_id", batch["item_id"])  # (N, D)
