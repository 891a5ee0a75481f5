"""Pieces of feature-based two-tower models: one shared input table, MLP towers.

``GroupInputs`` embeds the ``user`` and ``item`` feature groups from one fused
``FeatureEmbedding``, so a history that ``shares`` item_id reads the same rows
as the item tower's ``item_id`` (input and output item embeddings are one).
``fields(batch, group)`` flattens a group's sparse fields, pooled sequences and
dense columns into one vector. ``Tower`` is an ``MLP`` whose output is
optionally L2-normalised, so that inner products are cosines.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from rechub_core.features import Schema, dense, sequences, sparse
from rechub_core.layers.embedding import FeatureEmbedding, stack_dense
from rechub_core.layers.mlp import MLP

GROUPS = ("user", "item")


class GroupInputs(nn.Module):
    """``fields(batch, group) -> (B, F*D + Fd)`` for ``group`` in ``("user", "item")``.

    ``leave_out`` names features kept in the table (reachable with
    ``embedding.lookup``) but not among a group's fields, e.g. an id that a
    model feeds in on its own.

    >>> from rechub_core.features import SequenceFeature, SparseFeature
    >>> schema = Schema({"user": (SequenceFeature("hist", 10, 4, shares="item_id"),),
    ...                  "item": (SparseFeature("item_id", 10), SparseFeature("category", 3))})
    >>> inputs = GroupInputs(schema, dim=8)
    >>> inputs.output_dim, inputs.embedding.offsets["hist"] == inputs.embedding.offsets["item_id"]
    ({'user': 8, 'item': 16}, True)
    """

    def __init__(self, schema: Schema, dim: int, *, leave_out: Collection[str] = ()):
        super().__init__()
        self.embedding = FeatureEmbedding(schema.features(*GROUPS), dim)
        self.names: dict[str, tuple[list[str], list[str], list[str]]] = {}
        self.output_dim: dict[str, int] = {}
        for group in GROUPS:
            features = tuple(f for f in schema.groups[group] if f.name not in leave_out)
            names = tuple([f.name for f in kind(features)] for kind in (sparse, sequences, dense))
            if not any(names):
                raise ValueError(f"feature group {group!r} has no input features (left out: {sorted(leave_out)})")
            offsets = [self.embedding.offsets[n] for n in names[0]]
            self.register_buffer(f"{group}_offsets", torch.tensor(offsets, dtype=torch.long), persistent=False)
            self.names[group] = names
            self.output_dim[group] = (len(names[0]) + len(names[1])) * dim + len(names[2])

    def fields(self, batch: dict[str, torch.Tensor], group: str) -> torch.Tensor:
        sparse_names, sequence_names, dense_names = self.names[group]
        parts = []
        if sparse_names:
            ids = torch.stack([batch[n] for n in sparse_names], dim=1)  # (B, Fs)
            offsets = self.get_buffer(f"{group}_offsets")  # (Fs,)
            parts.append(self.embedding.table(ids + offsets).flatten(start_dim=1))  # (B, Fs*D)
        parts += [self.embedding.pooled(n, batch[n]) for n in sequence_names]  # (B, D) each: masked mean
        if dense_names:
            parts.append(stack_dense(batch, dense_names))  # (B, Fd)
        return torch.cat(parts, dim=1)  # (B, F*D + Fd)


class Tower(MLP):
    """An ``MLP`` whose output is L2-normalised when ``normalize`` (inner product = cosine).

    >>> tower = Tower(16, [32], output_dim=8, normalize=True)
    >>> out = tower(torch.randn(2, 16))
    >>> out.shape, torch.allclose(out.norm(dim=-1), torch.ones(2))
    (torch.Size([2, 8]), True)
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dims: Sequence[int],
        *,
        dropout: float = 0.0,
        output_dim: int | None = None,
        normalize: bool = False,
    ):
        super().__init__(input_dim, hidden_dims, dropout=dropout, output_dim=output_dim)
        self.normalize = normalize

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = super().forward(x)  # (B, out)
        return F.normalize(x, dim=-1) if self.normalize else x
