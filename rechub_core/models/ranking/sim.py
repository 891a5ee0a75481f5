"""SIM: Search-based Interest Model.

Pi et al., "Search-based User Interest Modeling with Lifelong Sequential
Behavior Data for Click-Through Rate Prediction", CIKM 2020. Two cascaded
units over the user's long behaviour window (``long_item``, ``long_category``,
``long_dt``):

- General Search Unit (Sec. 4.1, ``rechub_core.layers.behavior_search``):
  ``search="hard"`` keeps the ``top_k`` most recent behaviours of the target's
  category; ``search="soft"`` the ``top_k`` by the inner product
  ``<W_b e_i, W_a e_a>`` of small GSU embeddings (``gsu_dim`` per attribute,
  a table of their own). The soft search's embeddings learn from the paper's
  auxiliary CTR task on the long window: the scores weight the behaviours
  (``U_r = Σ r_i e_i``), ``[U_r, e_a]`` feeds an MLP whose BCE against the
  click, times ``auxiliary_weight`` (the paper's ``α``, with ``β = 1`` for the
  main loss), ``logits_and_auxiliary_loss`` returns. Hard search has nothing
  to learn (``α = 0``). In hard mode only ids are compared and the ``top_k``
  chosen ones embedded, so memory grows with ``top_k``, not the window.
- Exact Search Unit (Sec. 4.2): each chosen behaviour is its item and category
  embeddings (shared with the target, ``BehaviorInputs``) concatenated with
  the embedding of its temporal distance to the impression (``long_dt``), and
  multi-head target attention (``num_heads`` heads, target as the query) pools
  them into the long-term interest.

The short-term interest (the paper's model keeps the DIN part over recent
behaviours) is a multi-head target attention over ``hist``. Both interests,
the other features' embeddings and the dense columns feed an MLP → logit.

Departures: the search is exact ``topk`` rather than approximate MIPS; the
auxiliary task's pooling divides ``Σ r_i e_i`` by the number of real
behaviours, so its scale does not grow with the window's length; its MLP has
the main MLP's sizes. The paper splits very long sequences across machines;
one window of up to ~1000 behaviours fits here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from rechub_core.features import Group, Schema
from rechub_core.layers.behavior import LONG, SHORT, TIMES, BehaviorInputs
from rechub_core.layers.behavior_search import SoftSearch, hard_search
from rechub_core.layers.mlp import MLP
from rechub_core.layers.target_attention import MultiHeadTargetAttention
from rechub_core.models.config import require_dropout, require_layers, require_positive

CATEGORY = 1  # the category's place among a behaviour's attributes (item, category)


@dataclass
class SIMConfig:
    name: Literal["sim"] = "sim"
    embed_dim: int = 16
    search: Literal["hard", "soft"] = "hard"
    top_k: int = 50  # behaviours the GSU passes to the ESU
    num_heads: int = 4  # of both target attentions, each head embed_dim wide
    gsu_dim: int = 4  # soft search: the GSU's embedding size per attribute
    auxiliary_weight: float = 1.0  # soft search: weight of the GSU's auxiliary CTR loss
    mlp_dims: list[int] = field(default_factory=lambda: [256, 128])
    dropout: float = 0.1
    groups: list[Group] = field(default_factory=lambda: ["user", "item", "behavior", "long"])

    def __post_init__(self):
        require_layers(mlp_dims=self.mlp_dims, groups=self.groups)
        if self.search not in ("hard", "soft"):
            raise ValueError(f"search must be 'hard' or 'soft', got {self.search!r}")
        require_positive(embed_dim=self.embed_dim, top_k=self.top_k, num_heads=self.num_heads, gsu_dim=self.gsu_dim)
        if self.auxiliary_weight < 0:
            raise ValueError(f"auxiliary_weight must not be negative, got {self.auxiliary_weight}")
        require_dropout(self.dropout)


class SIM(nn.Module):
    """``forward(batch) -> (B,)`` logits; ``logits_and_auxiliary_loss(batch)`` adds the soft search's loss."""

    def __init__(self, schema: Schema, config: SIMConfig):
        super().__init__()
        d = config.embed_dim
        self.inputs = BehaviorInputs(schema, config.groups, [SHORT, LONG], d)
        by_name = {f.name: f for f in schema.features(*config.groups)}
        self.time_name = TIMES[LONG[0]]
        if self.time_name not in by_name:
            raise ValueError(f"SIM needs the long behaviours' times {self.time_name!r} in its groups {config.groups}")
        self.time = nn.Embedding(by_name[self.time_name].vocab_size, d)
        nn.init.normal_(self.time.weight, std=0.01)
        item_dim = self.inputs.item_dim
        heads = {"num_heads": config.num_heads, "head_dim": d, "out_dim": item_dim}
        self.short = MultiHeadTargetAttention(item_dim, item_dim, **heads)
        self.long = MultiHeadTargetAttention(item_dim, item_dim + d, **heads)  # keys: a behaviour and its time
        self.top_k = config.top_k
        self.soft = config.search == "soft"
        if self.soft:
            if not schema.labels:
                raise ValueError("soft search trains on the click label: the schema has no labels")
            self.label = schema.labels[0]
            # the GSU's own small table: the target's attributes and the long window reading their rows
            gsu_features = tuple(by_name[n] for n in (*self.inputs.attributes, *LONG))
            self.gsu = BehaviorInputs(Schema({"gsu": gsu_features}), ["gsu"], [LONG], config.gsu_dim)
            gsu_item = self.gsu.item_dim
            self.search = SoftSearch(gsu_item, gsu_item)
            self.gsu_mlp = MLP(2 * gsu_item, config.mlp_dims, dropout=config.dropout, output_dim=1)
            self.auxiliary_weight = config.auxiliary_weight
        deep_in = self.inputs.plain_dim + 2 * item_dim
        self.mlp = MLP(deep_in, config.mlp_dims, dropout=config.dropout, output_dim=1)

    def _search(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, tuple | None]:
        """GSU: chosen positions ``(B, k)`` of the long window, their ``(B, k)`` mask, and (soft) what the
        auxiliary task reads: the scores ``(B, L)``, the GSU's behaviours ``(B, L, A*g)``, target ``(B, A*g)``
        and the ``(B, L)`` real mask."""
        ids = self.inputs.ids(batch, 1)  # [(B, L) items, (B, L) categories]
        real = ids[0] > 0  # (B, L)
        if not self.soft:
            target_category = batch[self.inputs.attributes[CATEGORY]]  # (B,)
            return *hard_search(ids[CATEGORY], target_category, real, self.top_k), None
        target = self.gsu.target(batch)  # (B, A*g)
        behaviors, _ = self.gsu.sequence(batch)  # (B, L, A*g), only g wide per attribute
        index, chosen, scores = self.search(target, behaviors, real, self.top_k)
        return index, chosen, (scores, behaviors, target, real)

    def _auxiliary_logits(
        self, scores: torch.Tensor, behaviors: torch.Tensor, target: torch.Tensor, real: torch.Tensor
    ) -> torch.Tensor:
        """The soft search's CTR task: ``[Σ r_i e_i / n, e_a]`` → MLP → ``(B,)`` logits."""
        weights = (scores * real.to(scores.dtype)).unsqueeze(-1)  # (B, L, 1), zero at padding
        pooled = (weights * behaviors).sum(dim=1) / real.sum(dim=1, keepdim=True).clamp(min=1)  # (B, A*g)
        return self.gsu_mlp(torch.cat([pooled, target], dim=1)).squeeze(-1)  # (B,)

    def _logits(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, tuple | None]:
        target = self.inputs.target(batch)  # (B, A*D)
        short, short_mask = self.inputs.sequence(batch, 0)  # (B, Ls, A*D), (B, Ls)
        index, chosen, gsu = self._search(batch)  # (B, k), (B, k)
        picked = [t.gather(1, index) for t in self.inputs.ids(batch, 1)]  # [(B, k)]: only the chosen ids
        times = self.time(batch[self.time_name].gather(1, index))  # (B, k, D)
        long = torch.cat([self.inputs.embed(picked, 1), times], dim=-1)  # (B, k, A*D + D)
        interests = [self.short(target, short, short_mask), self.long(target, long, chosen)]  # 2 x (B, A*D)
        deep_in = torch.cat([self.inputs.plain(batch), *interests], dim=1)  # (B, P + 2*A*D)
        return self.mlp(deep_in).squeeze(-1), gsu  # (B,)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self._logits(batch)[0]

    def logits_and_auxiliary_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The logits and, with soft search, ``auxiliary_weight`` × the GSU's CTR loss (hard search: 0)."""
        logits, gsu = self._logits(batch)
        if gsu is None:
            return logits, logits.new_zeros(())
        loss = F.binary_cross_entropy_with_logits(self._auxiliary_logits(*gsu), batch[self.label].float())
        return logits, self.auxiliary_weight * loss
