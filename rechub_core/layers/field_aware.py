"""Field-aware embeddings and their pairwise interactions (FFM; Juan et al., "Field-aware
Factorization Machines for CTR Prediction", RecSys 2016; DeepFFM as in Zhang, Huang & Zhang,
"FAT-DeepFFM: Field Attentive Deep Field-aware Factorization Machine", arXiv 1905.06336, 2019).

Every feature ``i`` has one vector per field ``j``, ``v_{i,j}``: the vector it shows when it meets
field ``j``. The pair of fields ``(i, j)`` interacts through ``v_{i,j}`` and ``v_{j,i}``.

Storage: one ``nn.Embedding`` of ``F·D`` columns, so a feature id's row holds all its ``F``
field-aware vectors side by side, block ``j`` (columns ``j·D .. (j+1)·D``) being "field ``j``'s
table". It is the ``(F·total, D)`` table re-laid so one lookup fetches all ``F`` vectors of an id,
the table is the plain ``nn.Embedding`` the trainer gives sparse gradients, and sequences are
masked-mean pooled by ``FeatureEmbedding`` unchanged (a mean of rows is the mean of every block).
Parameters: ``F·D`` per id, ``F`` times an FM's — ``F = 10, D = 8`` stores 80 floats per id.
"""

from __future__ import annotations

import torch
from torch import nn

from rechub_core.features import Feature, dense, sequences, sparse
from rechub_core.layers.embedding import FieldEmbedding
from rechub_core.layers.pair_attention import field_pairs


class FieldAwareEmbedding(nn.Module):
    """Field-aware vectors of every field for every field, ``batch -> (B, F, F, D)``.

    ``out[:, i, j]`` is ``v_{i,j}``: field ``i``'s id looked up in field ``j``'s table (a sequence:
    the masked mean over its ids; a dense field: its value times a learned vector ``w_{i,j}``).
    Fields are ordered sparse, then sequence, then dense features, as ``FieldEmbedding`` orders them.

    >>> from rechub_core.features import DenseFeature, SparseFeature
    >>> emb = FieldAwareEmbedding((SparseFeature("item_id", 10), DenseFeature("price")), dim=4)
    >>> emb({"item_id": torch.tensor([1, 2]), "price": torch.tensor([0.5, -1.0])}).shape
    torch.Size([2, 2, 2, 4])
    """

    def __init__(self, features: tuple[Feature, ...], dim: int):
        super().__init__()
        self.num_fields = len(sparse(features)) + len(sequences(features)) + len(dense(features))
        self.fields = FieldEmbedding(features, self.num_fields * dim)  # a row: F blocks of D
        self.table = self.fields.embedding.table  # (ids, F·D): block j of row id is field j's table
        self.dim = dim

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        rows = self.fields(batch)  # (B, F, F·D)
        return rows.unflatten(2, (self.num_fields, self.dim))  # (B, F, F, D)


class FieldAwareInteraction(nn.Module):
    """``v_{i,j} ⊙ v_{j,i}`` for every pair of fields ``i < j`` (row-major), ``(B, F, F, D) -> (B, P, D)``
    with ``P = F(F-1)/2``. Summing the last dimension gives FFM's inner products ``<v_{i,j}, v_{j,i}>``.

    >>> FieldAwareInteraction(3)(torch.randn(2, 3, 3, 4)).shape
    torch.Size([2, 3, 4])
    """

    def __init__(self, num_fields: int):
        super().__init__()
        i, j = field_pairs(num_fields)  # (P,), (P,)
        # positions of v_{i,j} and v_{j,i} among the F·F vectors; index_select exports as one Gather
        self.register_buffer("ij", i * num_fields + j, persistent=False)
        self.register_buffer("ji", j * num_fields + i, persistent=False)
        self.num_pairs = len(i)

    def forward(self, vectors: torch.Tensor) -> torch.Tensor:
        flat = vectors.flatten(1, 2)  # (B, F·F, D)
        return flat.index_select(1, self.ij) * flat.index_select(1, self.ji)  # (B, P, D)
