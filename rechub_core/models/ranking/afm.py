"""AFM.

Xiao et al., "Attentional Factorization Machines: Learning the Weight of
Feature Interactions via Attention Networks", IJCAI 2017. Eq. (5):
``ŷ = w_0 + Σ_i w_i x_i + p^T Σ_{i<j} a_ij (v_i ⊙ v_j) x_i x_j``, where the
pair weights ``a_ij`` are a softmax over all pairs of
``h^T ReLU(W (v_i ⊙ v_j) x_i x_j + b)`` (``W``: ``t × k``, ``t`` =
``attention_dim``). Every feature is one field (``FieldEmbedding``): a sparse
id's vector (``x_i = 1``), a sequence's masked mean, and a dense value times a
learned vector (``v_i x_i``); the first-order term covers all of them.

Dropout (``dropout``) is applied to the attention-pooled vector before ``p``,
where the authors' release applies the paper's dropout on the pair-wise
interaction layer. The paper's L2 penalty on ``W`` is not part of the model:
it is a training-time regulariser (weight decay belongs to the trainer). No
hidden layers: AFM has none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from rechub_core.features import Group, Schema
from rechub_core.layers.embedding import FieldEmbedding
from rechub_core.layers.pair_attention import AttentionalPairPooling
from rechub_core.models.config import require_dropout, require_layers, require_positive
from rechub_core.models.ranking.linear import FirstOrder


@dataclass
class AFMConfig:
    name: Literal["afm"] = "afm"
    embed_dim: int = 16
    attention_dim: int = 16  # the paper's attention factor t
    dropout: float = 0.1
    groups: list[Group] = field(default_factory=lambda: ["user", "item"])

    def __post_init__(self):
        require_layers(groups=self.groups)
        require_positive(embed_dim=self.embed_dim, attention_dim=self.attention_dim)
        require_dropout(self.dropout)


class AFM(nn.Module):
    """``forward(batch) -> (B,)`` logits.

    >>> from rechub_core.features import SparseFeature
    >>> schema = Schema({"user": (SparseFeature("user_id", 5),), "item": (SparseFeature("item_id", 7),)})
    >>> model = AFM(schema, AFMConfig(embed_dim=4, attention_dim=2))
    >>> model({"user_id": torch.tensor([1, 2]), "item_id": torch.tensor([3, 4])}).shape
    torch.Size([2])
    """

    def __init__(self, schema: Schema, config: AFMConfig):
        super().__init__()
        features = schema.features(*config.groups)
        self.first_order = FirstOrder(features)
        self.embedding = FieldEmbedding(features, config.embed_dim)
        self.pooling = AttentionalPairPooling(self.embedding.num_fields, config.embed_dim, config.attention_dim)
        self.dropout = nn.Dropout(config.dropout)
        self.project = nn.Linear(config.embed_dim, 1, bias=False)  # p

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        pooled = self.pooling(self.embedding(batch))  # (B, F, D) -> (B, D)
        return self.first_order(batch) + self.project(self.dropout(pooled)).squeeze(-1)  # (B,)
