"""AutoInt (and AutoInt+).

Song et al., "AutoInt: Automatic Feature Interaction Learning via
Self-Attentive Neural Networks", CIKM 2019. Every feature is one field
embedding (Sec. 4.2): a sparse id looked up, a sequence mean-pooled, a dense
value scaling a vector of its own (``FieldEmbedding``). ``num_layers``
interacting layers (``InteractingLayer``: multi-head self-attention over the
fields with a ``W_Res`` residual and a ReLU, Eq. 5-8) map the ``M`` fields to
``M`` vectors of width ``num_heads · attention_dim``; these are concatenated
and a linear layer gives the logit (Eq. 9).

With ``mlp_dims`` (default empty: plain AutoInt) this is AutoInt+: an MLP
over the flattened field embeddings runs in parallel and its logit is added
(the paper's joint training with a feed-forward network).

Defaults are the paper's implementation details: d = 16, three interacting layers, two
heads, d' = 32 per head, residual connections. The paper's equations are
followed exactly; the authors' released code additionally applies ReLU to
the query/key/value projections, scales attention logits by √d' and adds a
LayerNorm after each layer — not done here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from rechub_core.features import Group, Schema
from rechub_core.layers.embedding import FieldEmbedding
from rechub_core.layers.interacting import InteractingLayer
from rechub_core.layers.mlp import MLP
from rechub_core.models.config import require_dropout, require_layers, require_positive


@dataclass
class AutoIntConfig:
    name: Literal["autoint"] = "autoint"
    embed_dim: int = 16
    attention_dim: int = 32  # d', per head
    num_heads: int = 2
    num_layers: int = 3
    use_residual: bool = True
    mlp_dims: list[int] = field(default_factory=list)  # empty: plain AutoInt; e.g. [256, 128]: AutoInt+
    dropout: float = 0.0  # in the AutoInt+ MLP; needs mlp_dims
    groups: list[Group] = field(default_factory=lambda: ["user", "item"])

    def __post_init__(self):
        require_layers(groups=self.groups)
        require_positive(
            embed_dim=self.embed_dim,
            attention_dim=self.attention_dim,
            num_heads=self.num_heads,
            num_layers=self.num_layers,
        )
        if any(d < 1 for d in self.mlp_dims):
            raise ValueError(f"mlp_dims must hold positive sizes (or be empty for plain AutoInt), got {self.mlp_dims}")
        require_dropout(self.dropout)
        if self.dropout > 0 and not self.mlp_dims:
            raise ValueError("dropout > 0 needs mlp_dims: dropout applies only to the AutoInt+ MLP")


class AutoInt(nn.Module):
    """``forward(batch) -> (B,)`` logits.

    >>> from rechub_core.features import DenseFeature, SparseFeature
    >>> schema = Schema({"user": (SparseFeature("user_id", 5),), "item": (DenseFeature("price"),)})
    >>> model = AutoInt(schema, AutoIntConfig(embed_dim=4, attention_dim=2, mlp_dims=[8]))
    >>> model({"user_id": torch.tensor([1, 2]), "price": torch.tensor([0.5, -1.0])}).shape
    torch.Size([2])
    """

    def __init__(self, schema: Schema, config: AutoIntConfig):
        super().__init__()
        self.embedding = FieldEmbedding(schema.features(*config.groups), config.embed_dim)
        layers, dim = [], config.embed_dim
        for _ in range(config.num_layers):
            layers.append(InteractingLayer(dim, config.attention_dim, config.num_heads, use_residual=config.use_residual))
            dim = layers[-1].output_dim
        self.interacting = nn.Sequential(*layers)
        self.head = nn.Linear(self.embedding.num_fields * dim, 1)  # w, b of Eq. 9
        flat = self.embedding.num_fields * config.embed_dim
        self.deep = MLP(flat, config.mlp_dims, dropout=config.dropout, output_dim=1) if config.mlp_dims else None

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        fields = self.embedding(batch)  # (B, M, d)
        interacted = self.interacting(fields).flatten(start_dim=1)  # (B, M·H·d')
        logit = self.head(interacted).squeeze(-1)  # (B,)
        if self.deep is not None:
            logit = logit + self.deep(fields.flatten(start_dim=1)).squeeze(-1)  # + MLP over (B, M·d)
        return logit
