"""DeepFFM.

Zhang, Huang & Zhang, "FAT-DeepFFM: Field Attentive Deep Field-aware Factorization Machine",
arXiv 1905.06336, 2019 (Sina Weibo): DeepFFM, the paper's model without its attention.

Every feature ``i`` has a field-aware vector ``v_{i,j}`` for every field ``j``
(``FieldAwareEmbedding``); each pair of fields ``i < j`` gives the interaction vector
``v_{i,j} ⊙ v_{j,i}`` (``FieldAwareInteraction``); the ``F(F-1)/2`` interaction vectors,
concatenated, feed an MLP whose output is added to a first-order (linear) term. The paper
describes an inner-product form (``<v_{i,j}, v_{j,i}>``, one number per pair, as in FFM) and a
Hadamard form (the whole vector); its best models use the Hadamard form, which this implements.

Sequence features are one field each (their ids' field-aware vectors, masked-mean pooled);
a dense feature is a field whose vectors are its value times learned vectors ``w_{i,j}``, and
also enters the first-order term. ``F`` vectors per id make the table ``F`` times an FM's
(``F = 10, embed_dim = 8``: 80 floats per id), hence the small default ``embed_dim``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from rechub_core.features import Group, Schema
from rechub_core.layers.field_aware import FieldAwareEmbedding, FieldAwareInteraction
from rechub_core.layers.mlp import MLP
from rechub_core.models.config import require_dropout, require_layers, require_positive
from rechub_core.models.ranking.linear import FirstOrder


@dataclass
class DeepFFMConfig:
    name: Literal["deepffm"] = "deepffm"
    embed_dim: int = 8  # per field-aware vector; every id stores F of them
    mlp_dims: list[int] = field(default_factory=lambda: [256, 128])
    dropout: float = 0.1
    groups: list[Group] = field(default_factory=lambda: ["user", "item"])

    def __post_init__(self):
        require_layers(mlp_dims=self.mlp_dims, groups=self.groups)
        require_positive(embed_dim=self.embed_dim)
        require_dropout(self.dropout)


class DeepFFM(nn.Module):
    """``forward(batch) -> (B,)`` logits.

    >>> from rechub_core.features import SparseFeature
    >>> schema = Schema({"user": (SparseFeature("user_id", 5),), "item": (SparseFeature("item_id", 7),)})
    >>> model = DeepFFM(schema, DeepFFMConfig(embed_dim=4, mlp_dims=[8]))
    >>> model({"user_id": torch.tensor([1, 2]), "item_id": torch.tensor([3, 4])}).shape
    torch.Size([2])
    """

    def __init__(self, schema: Schema, config: DeepFFMConfig):
        super().__init__()
        features = schema.features(*config.groups)
        self.first_order = FirstOrder(features)
        self.embedding = FieldAwareEmbedding(features, config.embed_dim)
        self.attention: nn.Module = nn.Identity()  # FAT-DeepFFM re-weights the F·F vectors here
        self.interaction = FieldAwareInteraction(self.embedding.num_fields)
        self.deep = MLP(self.interaction.num_pairs * config.embed_dim, config.mlp_dims, dropout=config.dropout, output_dim=1)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        vectors = self.embedding(batch)  # (B, F, F, D)
        vectors = self.attention(vectors.flatten(1, 2)).view_as(vectors)  # (B, F·F, D) -> (B, F, F, D)
        pairs = self.interaction(vectors).flatten(start_dim=1)  # (B, P·D)
        return self.first_order(batch) + self.deep(pairs).squeeze(-1)  # (B,)
