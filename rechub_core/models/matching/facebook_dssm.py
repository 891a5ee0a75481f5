"""Facebook's unified embedding model (EBR).

Huang et al., "Embedding-based Retrieval in Facebook Search", KDD 2020,
section "Model" (unified embedding model, Fig. 2): a query encoder and a
document encoder, each embedding its categorical features, concatenating them
with the dense ones and applying an MLP, scored by cosine similarity. Here
the query side is the searcher's context, every feature of the ``user``
group (the pooled item history included), and the document side the item's
features; both outputs are L2-normalised, so inner products are cosines and
``1 - cos`` is the paper's distance. All features are embedded from one
table, so the history and the document's item_id share rows. The paper
trains with the triplet loss ``max(0, D(q, d+) - D(q, d-) + m)`` and online
hard negatives mined from the current model's scores within the batch
("Hard Mining"); both live in the trainer (``Triplet``).

Departures: the paper's text features (character trigrams, hashed word
n-grams), location and social embeddings have no counterpart in the data;
the towers see the schema's features instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from rechub_core.features import Schema
from rechub_core.layers import GroupInputs, Tower
from rechub_core.models.config import require_layers


@dataclass
class FacebookDSSMConfig:
    name: Literal["facebook_dssm"] = "facebook_dssm"
    embed_dim: int = 32
    tower_dims: list[int] = field(default_factory=lambda: [128, 64])  # hidden ReLU layers, then the output
    dropout: float = 0.0

    def __post_init__(self):
        require_layers(tower_dims=self.tower_dims)
        if self.embed_dim < 1:
            raise ValueError(f"embed_dim must be at least 1, got {self.embed_dim}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


class FacebookDSSM(nn.Module):
    """``user_embedding(batch) -> (B, D)``, ``item_embedding(batch) -> (N, D)``, unit vectors: score = cosine.

    >>> from rechub_core.features import SequenceFeature, SparseFeature
    >>> schema = Schema({"user": (SparseFeature("user_id", 5), SequenceFeature("hist", 10, 4, shares="item_id")),
    ...                  "item": (SparseFeature("item_id", 10),)})
    >>> model = FacebookDSSM(schema, FacebookDSSMConfig(tower_dims=[16, 8])).eval()
    >>> model.user_embedding({"user_id": torch.tensor([1]), "hist": torch.tensor([[0, 3, 5, 7]])}).shape
    torch.Size([1, 8])
    """

    def __init__(self, schema: Schema, config: FacebookDSSMConfig):
        super().__init__()
        self.config = config
        self.inputs = GroupInputs(schema, config.embed_dim)
        *hidden, out = config.tower_dims
        self.query_tower, self.document_tower = (
            Tower(self.inputs.output_dim[group], hidden, dropout=config.dropout, output_dim=out, normalize=True)
            for group in ("user", "item")
        )

    def user_embedding(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.query_tower(self.inputs.fields(batch, "user"))  # (B, D)

    def item_embedding(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.document_tower(self.inputs.fields(batch, "item"))  # (N, D)
