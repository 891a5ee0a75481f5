"""DSSM two-tower retrieval.

Huang et al., "Learning Deep Structured Semantic Models for Web Search using
Clickthrough Data", CIKM 2013. Each side is an MLP tower over its own features;
the score is the cosine (or dot product) of the two outputs. The trainer divides
scores by its temperature; here the towers only produce vectors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from rechub_core.features import Schema
from rechub_core.layers import FlatInput, Tower
from rechub_core.models.config import require_layers


@dataclass
class DSSMConfig:
    name: Literal["dssm"] = "dssm"
    embed_dim: int = 32
    tower_dims: list[int] = field(default_factory=lambda: [128, 64])
    dropout: float = 0.0
    similarity: Literal["cosine", "dot"] = "cosine"

    def __post_init__(self):
        require_layers(tower_dims=self.tower_dims)


class DSSM(nn.Module):
    """``user_embedding(batch) -> (B, D)``, ``item_embedding(batch) -> (N, D)``."""

    def __init__(self, schema: Schema, config: DSSMConfig):
        super().__init__()
        self.config = config
        self.user_input = FlatInput(schema.features("user"), config.embed_dim)
        self.item_input = FlatInput(schema.features("item"), config.embed_dim)
        *hidden, out = config.tower_dims
        tower = {"dropout": config.dropout, "output_dim": out, "normalize": config.similarity == "cosine"}
        self.user_tower = Tower(self.user_input.output_dim, hidden, **tower)
        self.item_tower = Tower(self.item_input.output_dim, hidden, **tower)
        self.user_features = list(schema.groups["user"])
        self.item_features = list(schema.groups["item"])

    def user_embedding(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.user_tower(self.user_input(batch))  # (B, D)

    def item_embedding(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.item_tower(self.item_input(batch))  # (N, D)
