"""FiBiNET.

Huang, Zhang & Zhang, "FiBiNET: Combining Feature Importance and Bilinear
feature Interaction for Click-Through Rate Prediction", RecSys 2019, the deep
model of Sec. 3: the field embeddings ``E`` (sparse ids, masked-mean pooled
sequences) go through a SENET layer to ``V``; a bilinear-interaction layer of
the chosen type (``bilinear_type``) turns ``E`` into ``p`` and another, with
its own weights, turns ``V`` into ``q``; the combination layer concatenates
``p``, ``q`` (flattened) and the dense columns, and an MLP maps them to a
logit, added to the first-order part ``w_0 + Σ w_i x_i``.

The paper's embedding layer covers categorical fields only; dense columns
join the combination layer and the first-order part here, as in DeepFM.
Under ``field_each`` the last field's ``W_F``, which no pair ``i < j`` uses, is
left out (see ``BilinearInteraction``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from rechub_core.features import Group, Schema
from rechub_core.layers.bilinear import BilinearInteraction, BilinearType
from rechub_core.layers.embedding import FeatureEmbedding, stack_dense
from rechub_core.layers.mlp import MLP
from rechub_core.layers.senet import SENET
from rechub_core.models.config import require_dropout, require_layers, require_positive
from rechub_core.models.ranking.linear import FirstOrder


@dataclass
class FiBiNETConfig:
    name: Literal["fibinet"] = "fibinet"
    embed_dim: int = 16
    reduction_ratio: int = 3  # SENET's r
    bilinear_type: BilinearType = "field_interaction"
    mlp_dims: list[int] = field(default_factory=lambda: [256, 128])
    dropout: float = 0.1
    groups: list[Group] = field(default_factory=lambda: ["user", "item"])

    def __post_init__(self):
        require_layers(mlp_dims=self.mlp_dims, groups=self.groups)
        require_positive(embed_dim=self.embed_dim, reduction_ratio=self.reduction_ratio)
        if self.bilinear_type not in ("field_all", "field_each", "field_interaction"):
            raise ValueError(
                f"bilinear_type must be 'field_all', 'field_each' or 'field_interaction', got {self.bilinear_type!r}"
            )
        require_dropout(self.dropout)


class FiBiNET(nn.Module):
    """``forward(batch) -> (B,)`` logits.

    >>> from rechub_core.features import SparseFeature
    >>> schema = Schema({"user": (SparseFeature("user_id", 5),), "item": (SparseFeature("item_id", 7),)})
    >>> model = FiBiNET(schema, FiBiNETConfig(embed_dim=4, mlp_dims=[8], bilinear_type="field_each"))
    >>> model({"user_id": torch.tensor([1, 2]), "item_id": torch.tensor([3, 4])}).shape
    torch.Size([2])
    """

    def __init__(self, schema: Schema, config: FiBiNETConfig):
        super().__init__()
        features = schema.features(*config.groups)
        self.first_order = FirstOrder(features)
        self.dense_names = self.first_order.dense_names
        self.embedding = FeatureEmbedding(features, config.embed_dim)
        num_fields, dim = self.embedding.num_fields, config.embed_dim
        self.senet = SENET(num_fields, config.reduction_ratio)
        self.bilinear = BilinearInteraction(num_fields, dim, config.bilinear_type)  # E -> p
        self.senet_bilinear = BilinearInteraction(num_fields, dim, config.bilinear_type)  # V -> q
        num_pairs = len(self.bilinear.rows)
        deep_in = 2 * num_pairs * dim + len(self.dense_names)
        self.deep = MLP(deep_in, config.mlp_dims, dropout=config.dropout, output_dim=1)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        fields = self.embedding(batch)  # E: (B, F, D)
        p = self.bilinear(fields).flatten(start_dim=1)  # (B, P*D)
        q = self.senet_bilinear(self.senet(fields)).flatten(start_dim=1)  # (B, P*D)
        combined = [p, q]
        if self.dense_names:
            combined.append(stack_dense(batch, self.dense_names))  # (B, Fd)
        deep_in = torch.cat(combined, dim=1)  # (B, 2*P*D + Fd)
        return self.first_order(batch) + self.deep(deep_in).squeeze(-1)  # (B,)
