"""DIN's base model: Embedding&MLP with the behaviour sequence sum-pooled.

Zhou et al., "Deep Interest Network for Click-Through Rate Prediction", KDD
2018, Sec. 4.2 and Fig. 2 (left). Every feature is embedded; the user's
behaviours (``hist`` with ``hist_category``, each behaviour its item's and
category's embeddings side by side, one table shared with the candidate item,
``BehaviorInputs``) are sum-pooled into one fixed-length vector (the paper's
pooling for this model), concatenated with the other fields' embeddings (user
profile, the candidate item's features, dense columns appended) and fed to an
MLP with PReLU (the paper's 200-80) → logit.

Also here, shared with ``din``: the MLP whose activations are DIN's choices
(``activation``: PReLU, or Dice, Sec. 5.2), and mini-batch aware L2
regularisation (Sec. 5.1, Eq. 11), ``l2_weight``, default 0 = off. At mini-batch
``m`` it penalises only the embedding rows ``j`` the batch uses (``α_mj = 1``):
``l2_weight · Σ_j ||w_j||² / q_j``, added to the loss as the model's auxiliary
loss (``logits_and_auxiliary_loss``; the gradient reaches only those rows). The
paper divides by ``n_j``, the number of training samples holding feature ``j``;
a model here never sees the training set as a whole, so ``n_j = M q_j`` is
counted as batches stream past: ``q_j`` = the samples holding ``j`` seen so
far (this batch included) / batches seen so far, exactly ``n_j / M`` from the
end of the first epoch on (``M`` batches an epoch). So ``l2_weight`` is the
paper's ``λ`` divided by ``M``. The counts live in non-saved buffers of the
model and move only in training.

Departures: the paper's embeddings are 12 wide, as here; it gives no dropout
(default 0). Features the paper has no counterpart for (dense ``price``) are
appended to the MLP input as columns. ``hist_dt`` (in the "behavior" group) is
not read: the paper's behaviours carry no time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from rechub_core.features import Group, Schema
from rechub_core.layers.behavior import SHORT, BehaviorInputs
from rechub_core.layers.dice import activation
from rechub_core.layers.mlp import MLP
from rechub_core.models.config import require_dropout, require_layers, require_positive


@dataclass
class DINBaseConfig:
    name: Literal["din_base"] = "din_base"
    embed_dim: int = 12  # per item attribute: a behaviour and the target are 2 × embed_dim wide
    mlp_dims: list[int] = field(default_factory=lambda: [200, 80])
    activation: Literal["prelu", "dice"] = "prelu"  # the MLP's hidden activations
    dropout: float = 0.0
    l2_weight: float = 0.0  # mini-batch aware L2 on the embedding rows a batch uses (λ / batches an epoch); 0 = off
    groups: list[Group] = field(default_factory=lambda: ["user", "item", "behavior"])

    def __post_init__(self):
        require_layers(mlp_dims=self.mlp_dims, groups=self.groups)
        require_positive(embed_dim=self.embed_dim)
        if self.activation not in ("prelu", "dice"):
            raise ValueError(f"activation must be 'prelu' or 'dice', got {self.activation!r}")
        require_dropout(self.dropout)
        if not self.l2_weight >= 0.0:
            raise ValueError(f"l2_weight must be non-negative (0 turns it off), got {self.l2_weight}")


def din_mlp(input_dim: int, dims: list[int], kind: Literal["prelu", "dice"], dropout: float) -> MLP:
    """``MLP(input_dim, dims) → 1`` with DIN's activation (per-channel PReLU or Dice) after each hidden layer."""
    mlp = MLP(input_dim, dims, dropout=dropout, output_dim=1)
    width = input_dim
    for i, layer in enumerate(mlp.net):
        if isinstance(layer, nn.Linear):
            width = layer.out_features
        elif isinstance(layer, nn.ReLU):
            mlp.net[i] = activation(kind, width)
    return mlp


class MiniBatchAwareL2(nn.Module):
    """DIN's Eq. 11 for one mini-batch: ``weight · Σ_{j in batch} ||w_j||² / q_j`` over rows of ``table``.

    ``forward(table, rows, real)`` takes each sample's rows ``(B, K)`` (repeats allowed) and which
    are real ``(B, K)``. ``q_j``: samples holding row ``j`` per batch, counted over the batches
    seen in training (this one included); eval calls read the counts without moving them.
    """

    def __init__(self, num_rows: int, weight: float):
        super().__init__()
        self.weight = weight
        self.register_buffer("samples_with_row", torch.zeros(num_rows, dtype=torch.float64), persistent=False)
        self.register_buffer("batches", torch.zeros((), dtype=torch.float64), persistent=False)

    def forward(self, table: nn.Embedding, rows: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        num_rows = len(self.samples_with_row)
        sample = torch.arange(len(rows)).unsqueeze(1).expand_as(rows)  # (B, K)
        pairs = torch.unique((sample * num_rows + rows)[real])  # distinct (sample, row)
        used, holders = torch.unique(pairs % num_rows, return_counts=True)  # (R,): rows and samples holding each
        counts = self.samples_with_row[used] + holders  # (R,)
        per_batch = (counts / (self.batches + 1)).to(table.weight.dtype)  # (R,): q_j = n_j / M
        if self.training:
            self.samples_with_row[used] = counts
            self.batches += 1
        squares = table(used).pow(2).sum(dim=1)  # (R,): a lookup, so the table's gradient stays row-sparse
        return self.weight * (squares / per_batch).sum()


class DINBase(nn.Module):
    """``forward(batch) -> (B,)`` logits; ``logits_and_auxiliary_loss(batch)`` adds the regulariser."""

    def __init__(self, schema: Schema, config: DINBaseConfig):
        super().__init__()
        self.inputs = BehaviorInputs(schema, config.groups, [SHORT], config.embed_dim)
        deep_in = self.inputs.plain_dim + self.inputs.item_dim
        self.mlp = din_mlp(deep_in, config.mlp_dims, config.activation, config.dropout)
        table = self.inputs.embedding.table
        self.regularizer = MiniBatchAwareL2(table.num_embeddings, config.l2_weight) if config.l2_weight > 0 else None

    def interest(self, batch: dict[str, torch.Tensor], behaviors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The user's behaviours pooled, ``(B, A*D)``: their sum over real positions."""
        return (behaviors * mask.unsqueeze(-1).to(behaviors.dtype)).sum(dim=1)  # (B, A*D)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        behaviors, mask = self.inputs.sequence(batch)  # (B, L, A*D), (B, L)
        deep_in = torch.cat([self.inputs.plain(batch), self.interest(batch, behaviors, mask)], dim=1)  # (B, P + A*D)
        return self.mlp(deep_in).squeeze(-1)  # (B,)

    def logits_and_auxiliary_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | float]:
        logits = self(batch)
        if self.regularizer is None:
            return logits, 0.0
        rows, real = self.embedding_rows(batch)
        return logits, self.regularizer(self.inputs.embedding.table, rows, real)

    def embedding_rows(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The table rows each sample looks up ``(B, K)`` and which of them are real (not padding) ``(B, K)``."""
        emb = self.inputs.embedding
        rows, real = [], []
        for name in [*emb.sparse_names, *self.inputs.attributes]:
            rows.append((batch[name] + emb.offsets[name]).unsqueeze(1))  # (B, 1)
            real.append(torch.ones_like(rows[-1], dtype=torch.bool))
        for name in emb.sequence_names:
            rows.append(batch[name] + emb.offsets[name])  # (B, L)
            real.append(batch[name] > 0)
        for names in self.inputs.behaviors:
            for name in names:
                rows.append(batch[name] + emb.offsets[name])  # (B, L)
                real.append(batch[names[0]] > 0)  # the sequence's padding, marked by its first column
        return torch.cat(rows, dim=1), torch.cat(real, dim=1)  # (B, K), (B, K)
