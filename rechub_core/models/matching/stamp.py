"""STAMP: short-term attention/memory priority model.

Liu, Zeng, Mokhosi & Zhang, "STAMP: Short-Term Attention/Memory Priority
Model for Session-based Recommendation", KDD 2018, Sec. 3.3-3.4. The session
is the user's left-padded history; x_i are its item embeddings, x_t the last
(most recent) real item's and m_s = mean_i x_i over the real items (Eq. 1).
The attention net (Eq. 2) gives each real position
``alpha_i = W0^T sigmoid(W1 x_i + W2 x_t + W3 m_s + b_a)`` (not normalised,
as in the paper) and the general interest is ``m_a = sum_i alpha_i x_i``
(Eq. 3). Two MLP cells give ``h_s = tanh(W_s m_a + b_s)`` and
``h_t = tanh(W_t x_t + b_t)`` (Eq. 4-5), and the trilinear score of item i
is ``<h_s, h_t, x_i> = (h_s * h_t) . x_i`` (Eq. 6): the user vector is
``h_s * h_t`` and the item vector x_i, from the same table as the session's
items. The paper trains with cross-entropy over all items (Eq. 7-8,
``FullSoftmax``).

Departure: Eq. 6 passes the trilinear product through a sigmoid before the
softmax of Eq. 7; the towers return the raw product (an inner product of the
two towers, which retrieval needs) and the trainer's temperature scales it.
An empty history has x_t = m_s = m_a = 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from rechub_core.features import Schema
from rechub_core.layers import FeatureEmbedding
from rechub_core.models.matching.inputs import item_and_history


@dataclass
class STAMPConfig:
    name: Literal["stamp"] = "stamp"
    embed_dim: int = 64  # d: item embeddings, attention and MLP cells (the paper uses 100)

    def __post_init__(self):
        if self.embed_dim < 1:
            raise ValueError(f"embed_dim must be at least 1, got {self.embed_dim}")


class STAMP(nn.Module):
    """``user_embedding(batch) -> (B, D)``, ``item_embedding(batch) -> (N, D)``, score = dot product.

    >>> from rechub_core.features import SequenceFeature, SparseFeature
    >>> schema = Schema({"user": (SequenceFeature("hist", 10, 4, shares="item_id"),),
    ...                  "item": (SparseFeature("item_id", 10),)})
    >>> model = STAMP(schema, STAMPConfig(embed_dim=8)).eval()
    >>> model.user_embedding({"hist": torch.tensor([[0, 3, 5, 7]])}).shape
    torch.Size([1, 8])
    """

    def __init__(self, schema: Schema, config: STAMPConfig):
        super().__init__()
        self.config = config
        items, history = item_and_history(schema, "STAMP")
        self.history_name = history.name
        d = config.embed_dim
        self.embedding = FeatureEmbedding((items, history), d)  # shared item table
        self.w1 = nn.Linear(d, d, bias=False)  # on each item x_i
        self.w2 = nn.Linear(d, d, bias=False)  # on the last item x_t
        self.w3 = nn.Linear(d, d)  # on the session mean m_s; its bias is b_a
        self.w0 = nn.Linear(d, 1, bias=False)
        self.cell_s = nn.Linear(d, d)  # MLP cell A: W_s, b_s
        self.cell_t = nn.Linear(d, d)  # MLP cell B: W_t, b_t

    def attention(self, x: torch.Tensor, last: torch.Tensor, mean: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``alpha_i (B, L)`` of the items ``(B, L, D)`` given x_t and m_s ``(B, D)``; zero at padding (Eq. 2)."""
        query = (self.w2(last) + self.w3(mean)).unsqueeze(1)  # (B, 1, D)
        alpha = self.w0(torch.sigmoid(self.w1(x) + query)).squeeze(-1)  # (B, L)
        return alpha * mask.to(alpha.dtype)

    def user_embedding(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        ids = batch[self.history_name]  # (B, L), left-padded: the most recent real item is at -1
        mask = ids > 0  # (B, L)
        weights = mask.unsqueeze(-1).to(self.embedding.table.weight.dtype)  # (B, L, 1)
        x = self.embedding.lookup(self.history_name, ids) * weights  # (B, L, D), zero at padding
        last = x[:, -1]  # (B, D): x_t, 0 for an empty history
        mean = x.sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)  # (B, D): m_s
        general = (self.attention(x, last, mean, mask).unsqueeze(-1) * x).sum(dim=1)  # (B, D): m_a
        h_s = torch.tanh(self.cell_s(general))  # (B, D)
        h_t = torch.tanh(self.cell_t(last))  # (B, D)
        return h_s * h_t  # (B, D): <h_s, h_t, x_i> = (h_s * h_t) . x_i

    def item_embedding(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.embedding.lookup("item_id", batch["item_id"])  # (N, D)
