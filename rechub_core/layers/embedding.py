"""One fused embedding table for all sparse and sequence features of a model.

Each feature owns a slice of the table (``offsets``); a sequence feature that
``shares`` a sparse feature reads that feature's slice. Lookups for all sparse
features are a single ``embedding`` call; sequences are masked-mean pooled, so
padding (id 0) never counts.
"""

from __future__ import annotations

import torch
from torch import nn

from rechub_core.features import Feature, dense, sequences, sparse


class FeatureEmbedding(nn.Module):
    """Embed a batch's sparse and sequence features as fields ``(B, F, D)``.

    ``fields`` (default: all ``features``) are the features ``forward`` returns;
    the others only get rows, for ``lookup``.

    >>> from rechub_core.features import SparseFeature
    >>> emb = FeatureEmbedding((SparseFeature("item_id", 10),), dim=4)
    >>> emb({"item_id": torch.tensor([1, 2])}).shape
    torch.Size([2, 1, 4])
    """

    def __init__(self, features: tuple[Feature, ...], dim: int, *, fields: tuple[Feature, ...] | None = None):
        super().__init__()
        shown = features if fields is None else fields  # what forward returns; the rest only has rows to look up
        self.sparse_names = [f.name for f in sparse(shown)]
        self.sequence_names = [f.name for f in sequences(shown)]
        offsets: dict[str, int] = {}
        total = 0
        for f in sparse(features):
            offsets[f.name] = total
            total += f.vocab_size
        for f in sequences(features):
            if f.shares is not None and f.shares in offsets:
                offsets[f.name] = offsets[f.shares]
            else:
                offsets[f.name] = total
                total += f.vocab_size
        self.offsets = offsets
        self.table = nn.Embedding(total, dim)
        nn.init.normal_(self.table.weight, std=0.01)
        self.register_buffer(
            "sparse_offsets", torch.tensor([offsets[n] for n in self.sparse_names], dtype=torch.long), persistent=False
        )
        self.dim = dim

    @property
    def num_fields(self) -> int:
        return len(self.sparse_names) + len(self.sequence_names)

    def lookup(self, name: str, ids: torch.Tensor) -> torch.Tensor:
        """Embed raw ids of one feature, any shape ``(...) -> (..., D)``."""
        return self.table(ids + self.offsets[name])

    def pooled(self, name: str, ids: torch.Tensor) -> torch.Tensor:
        """Masked mean of a padded sequence, ``(B, L) -> (B, D)``; all-padding rows give 0."""
        mask = (ids > 0).unsqueeze(-1).to(self.table.weight.dtype)  # (B, L, 1)
        summed = (self.lookup(name, ids) * mask).sum(dim=1)  # (B, D)
        return summed / mask.sum(dim=1).clamp(min=1.0)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        fields = []
        if self.sparse_names:
            ids = torch.stack([batch[n] for n in self.sparse_names], dim=1)  # (B, Fs)
            fields.append(self.table(ids + self.sparse_offsets))  # (B, Fs, D)
        for name in self.sequence_names:
            fields.append(self.pooled(name, batch[name]).unsqueeze(1))  # (B, 1, D)
        return torch.cat(fields, dim=1)  # (B, F, D)


def stack_dense(batch: dict[str, torch.Tensor], names: list[str]) -> torch.Tensor:
    """Dense columns side by side, ``(B, len(names))`` float."""
    return torch.stack([batch[n].float() for n in names], dim=1)


class FieldEmbedding(nn.Module):
    """Every feature as one field ``(B, F + Fd, D)``: sparse ids looked up, sequences masked-mean
    pooled (``FeatureEmbedding``), and each dense value scaling a learned vector of its own
    (Song et al., AutoInt, CIKM 2019, Sec. 4.2), for models whose interactions run over fields.

    >>> from rechub_core.features import DenseFeature, SparseFeature
    >>> emb = FieldEmbedding((SparseFeature("item_id", 10), DenseFeature("price")), dim=4)
    >>> emb({"item_id": torch.tensor([1, 2]), "price": torch.tensor([0.5, -1.0])}).shape
    torch.Size([2, 2, 4])
    """

    def __init__(self, features: tuple[Feature, ...], dim: int):
        super().__init__()
        self.embedding = FeatureEmbedding(features, dim)
        self.dense_names = [f.name for f in dense(features)]
        self.dense_vectors = nn.Parameter(torch.randn(len(self.dense_names), dim) * 0.01)  # (Fd, D)
        self.num_fields = self.embedding.num_fields + len(self.dense_names)
        self.dim = dim

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        fields = self.embedding(batch)  # (B, F, D)
        if not self.dense_names:
            return fields
        values = stack_dense(batch, self.dense_names).unsqueeze(-1)  # (B, Fd, 1)
        return torch.cat([fields, values * self.dense_vectors], dim=1)  # (B, F + Fd, D)


class FlatInput(nn.Module):
    """Embedded fields and dense columns concatenated into one ``(B, F*D + Fd)`` vector."""

    def __init__(self, features: tuple[Feature, ...], dim: int):
        super().__init__()
        self.embedding = FeatureEmbedding(features, dim)
        self.dense_names = [f.name for f in dense(features)]
        self.output_dim = self.embedding.num_fields * dim + len(self.dense_names)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        fields = self.embedding(batch).flatten(start_dim=1)  # (B, F*D)
        if not self.dense_names:
            return fields
        return torch.cat([fields, stack_dense(batch, self.dense_names)], dim=1)  # (B, F*D + Fd)
