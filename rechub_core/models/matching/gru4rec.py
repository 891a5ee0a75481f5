"""GRU4Rec: session-based recommendation with a recurrent network.

Hidasi, Karatzoglou, Baltrunas & Tikk, "Session-based Recommendations with
Recurrent Neural Networks", ICLR 2016, Sec. 3.1: the current item goes through
an embedding layer into one or more GRU layers; the final layer's state scores
every item by an inner product with that item's output weights. Training
(Sec. 3.1.1 session-parallel mini-batches, in-batch negatives of Sec. 3.1.2,
the ranking losses of Hidasi & Karatzoglou, "Recurrent Neural Networks with
Top-k Gains for Session-based Recommendations", CIKM 2018, Sec. 4) is
``fit_session_parallel`` in ``rechub_core.training.session_parallel``, which
drives the model one event at a time through ``initial_state`` / ``step``.

As a two-tower model, the user vector is the state after the history's last
real item, projected to ``embed_dim`` when ``hidden_dim`` differs, and the
item vector is the item's output embedding; ``user_embedding`` over a history
equals ``step`` fed its real items from ``initial_state``.

Departures: the input is an embedding layer (the paper found 1-of-N input
slightly better; a 1-of-N input is an embedding of the GRU's gate width);
there is no output bias per item (a two-tower score is an inner product);
with ``hidden_dim != embed_dim`` the output weights are factorised as a
linear projection of the state times ``embed_dim``-wide output embeddings.
``tied_embeddings`` shares one table between input and output items (the
paper keeps them apart, the default here).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from rechub_core.features import Schema
from rechub_core.layers import FeatureEmbedding, GRUEncoder
from rechub_core.models.matching.inputs import item_and_history


@dataclass
class GRU4RecConfig:
    name: Literal["gru4rec"] = "gru4rec"
    embed_dim: int = 64
    hidden_dim: int = 100  # the paper's GRU size
    num_layers: int = 1
    embedding_dropout: float = 0.0  # on the input item embedding
    hidden_dropout: float = 0.2  # on each GRU layer's output (between layers and before scoring)
    tied_embeddings: bool = False  # one table for input and output items

    def __post_init__(self):
        if self.embed_dim < 1 or self.hidden_dim < 1:
            raise ValueError(f"embed_dim and hidden_dim must be positive, got {self.embed_dim}, {self.hidden_dim}")
        if self.num_layers < 1:
            raise ValueError(f"num_layers must be at least 1, got {self.num_layers}")
        for name in ("embedding_dropout", "hidden_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")


class GRU4Rec(nn.Module):
    """``user_embedding(batch) -> (B, D)``, ``item_embedding(batch) -> (N, D)``, plus the step API.

    >>> from rechub_core.features import SequenceFeature, SparseFeature
    >>> schema = Schema({"user": (SequenceFeature("hist", 10, 4, shares="item_id"),),
    ...                  "item": (SparseFeature("item_id", 10),)})
    >>> model = GRU4Rec(schema, GRU4RecConfig(embed_dim=8, hidden_dim=16)).eval()
    >>> out, h = model.step(torch.tensor([3, 5]), model.initial_state(2))
    >>> out.shape, h.shape
    (torch.Size([2, 8]), torch.Size([1, 2, 16]))
    """

    def __init__(self, schema: Schema, config: GRU4RecConfig):
        super().__init__()
        self.config = config
        items, history = item_and_history(schema, "GRU4Rec")
        self.history_name = history.name
        if config.tied_embeddings:
            self.embedding = FeatureEmbedding((items, history), config.embed_dim)
            self.output_embedding = None
        else:
            self.embedding = FeatureEmbedding((history,), config.embed_dim)  # input items
            self.output_embedding = FeatureEmbedding((items,), config.embed_dim)  # the paper's output weights
        self.embedding_dropout = nn.Dropout(config.embedding_dropout)
        self.encoder = GRUEncoder(config.embed_dim, config.hidden_dim, config.num_layers, config.hidden_dropout)
        self.hidden_dropout = nn.Dropout(config.hidden_dropout)
        same = config.hidden_dim == config.embed_dim
        self.projection = nn.Identity() if same else nn.Linear(config.hidden_dim, config.embed_dim)

    def _embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.embedding_dropout(self.embedding.lookup(self.history_name, ids))  # (..., E)

    def _output(self, state: torch.Tensor) -> torch.Tensor:
        return self.projection(self.hidden_dropout(state))  # (S, D)

    def initial_state(self, batch_size: int) -> torch.Tensor:
        """The state a session starts from: zeros ``(num_layers, S, hidden_dim)``."""
        return self.encoder.initial_state(batch_size)

    def step(self, ids: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Feed one event per row, ``ids (S,)``: the output ``(S, D)`` scores the next item; ``h`` carries on."""
        out, h = self.encoder.step(self._embed(ids), h)  # (S, H), (num_layers, S, H)
        return self._output(out), h

    def user_embedding(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        ids = batch[self.history_name]  # (B, L), left-padded
        _, last = self.encoder(self._embed(ids), ids > 0)  # (B, H)
        return self._output(last)  # (B, D)

    def item_embedding(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        table = self.embedding if self.output_embedding is None else self.output_embedding
        return table.lookup("item_id", batch["item_id"])  # (N, D)
