"""FAT-DeepFFM.

Zhang, Huang & Zhang, "FAT-DeepFFM: Field Attentive Deep Field-aware Factorization Machine",
arXiv 1905.06336, 2019 (Sina Weibo). DeepFFM (``deepffm.py``: field-aware embeddings, Hadamard
pair interactions ``v_{i,j} ⊙ v_{j,i}`` into an MLP, plus a first-order term) with the paper's
Compose-Excitation network (``CENet``) applied to the field-aware embedding matrix *before* the
interaction layer, the placement the paper finds clearly better than attention over the
interactions: each of the ``F·F`` vectors ``v_{i,j}`` is composed into one number by its own
1-D convolution kernel, two ReLU fully connected layers (``F² → ⌈F²/r⌉ → F²``) turn those numbers
into one weight per vector, and every ``v_{i,j}`` is scaled by its weight.

Departure: the excitation layers have biases, the second starting at 1 (weights start near 1,
none dead under the output ReLU); see ``rechub_core/layers/cen.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rechub_core.features import Schema
from rechub_core.layers.cen import CENet
from rechub_core.models.config import require_positive
from rechub_core.models.ranking.deepffm import DeepFFM, DeepFFMConfig


@dataclass
class FATDeepFFMConfig(DeepFFMConfig):
    name: Literal["fat_deepffm"] = "fat_deepffm"  # type: ignore[assignment]
    reduction_ratio: int = 1  # the excitation's hidden layer has ⌈F² / reduction_ratio⌉ units

    def __post_init__(self):
        super().__post_init__()
        require_positive(reduction_ratio=self.reduction_ratio)


class FATDeepFFM(DeepFFM):
    """``forward(batch) -> (B,)`` logits; DeepFFM with ``CENet`` over the ``F·F`` field-aware vectors.

    >>> import torch
    >>> from rechub_core.features import SparseFeature
    >>> schema = Schema({"user": (SparseFeature("user_id", 5),), "item": (SparseFeature("item_id", 7),)})
    >>> model = FATDeepFFM(schema, FATDeepFFMConfig(embed_dim=4, mlp_dims=[8], reduction_ratio=2))
    >>> model({"user_id": torch.tensor([1, 2]), "item_id": torch.tensor([3, 4])}).shape
    torch.Size([2])
    """

    def __init__(self, schema: Schema, config: FATDeepFFMConfig):
        super().__init__(schema, config)
        fields = self.embedding.num_fields
        self.attention = CENet(fields * fields, config.embed_dim, config.reduction_ratio)
