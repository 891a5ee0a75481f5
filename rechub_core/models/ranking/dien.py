"""DIEN: Deep Interest Evolution Network.

Zhou, Mou, Fan, Pi, Bian, Zhou, Zhu and Gai, "Deep Interest Evolution Network
for Click-Through Rate Prediction", AAAI 2019.

Implemented as in the paper (Sec. 4):
- Behaviours and the target ad are their item id and category embeddings side
  by side, from one table (``BehaviorInputs``, as DIN's Sec. 4.1).
- Interest extractor layer (Sec. 4.2): a GRU over the short history, oldest to
  newest (``GRUEncoder``: left padding never reaches the recurrence); its
  states ``h_t`` are as wide as a behaviour, for the auxiliary loss (Eq. 6):
  ``L_aux = -mean[log σ(<h_t, e_{t+1}>) + log(1 - σ(<h_t, ê_{t+1}>))]`` over the
  pairs ``(t, t+1)`` of consecutive real behaviours, ``e_{t+1}`` the next
  behaviour and ``ê_{t+1}`` the negative drawn for that position (``hist_neg``,
  ``hist_neg_category``, embedded by the same tables). The trainer adds
  ``aux_weight`` (the paper's ``α``) × ``L_aux`` to the CTR loss
  (``logits_and_auxiliary_loss``); ``forward`` never reads the negatives.
- Interest evolving layer (Sec. 4.3): the target's attention over the
  extracted interests, ``a_t = softmax_t(h_t W e_a)`` (Eq. 7) over the real
  steps, drives a second GRU with an attentional update (``evolution``: AUGRU,
  the paper's choice, or AIGRU / AGRU, ``rechub_core.layers.interest_gru``);
  padding steps leave its state unchanged.
- The final evolved state (after the most recent real behaviour) joins the
  embeddings of the other fields (user profile, the target's attributes,
  context) and the dense features in an MLP (the paper's 200-80, ReLU) → logit.

Departures: the paper sums ``L_aux`` over steps and averages over users; here it
is the mean over all real pairs of the batch, so ``aux_weight`` does not scale
with the histories' lengths. The paper's MLP uses PReLU/Dice in its released
code; the text gives no activation, ReLU here. The time features
(``hist_dt``) are not read: the paper does not use them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from rechub_core.data.behaviors import HIST_NEG, HIST_NEG_CATEGORY
from rechub_core.features import Group, Schema
from rechub_core.layers.behavior import SHORT, BehaviorInputs
from rechub_core.layers.gru import GRUEncoder
from rechub_core.layers.interest_gru import CELLS, Evolution, InterestEvolution
from rechub_core.layers.mlp import MLP
from rechub_core.models.config import require_dropout, require_layers, require_positive


@dataclass
class DIENConfig:
    name: Literal["dien"] = "dien"
    embed_dim: int = 16  # per item attribute; behaviours and both GRUs' states are 2 × embed_dim wide
    evolution: Evolution = "augru"
    aux_weight: float = 1.0  # α: weight of the auxiliary next-behaviour loss; 0 leaves it out
    mlp_dims: list[int] = field(default_factory=lambda: [200, 80])
    dropout: float = 0.1
    groups: list[Group] = field(default_factory=lambda: ["user", "item", "behavior"])

    def __post_init__(self):
        require_layers(mlp_dims=self.mlp_dims, groups=self.groups)
        require_positive(embed_dim=self.embed_dim)
        if self.evolution not in CELLS:
            raise ValueError(f"evolution must be one of {sorted(CELLS)}, got {self.evolution!r}")
        if self.aux_weight < 0:
            raise ValueError(f"aux_weight must not be negative, got {self.aux_weight}")
        require_dropout(self.dropout)
        missing = [g for g in ("user", "item", "behavior") if g not in self.groups]
        if missing:
            raise ValueError(f"DIEN reads the history, its categories and the target: groups must include {missing}")


def next_behavior_loss(
    states: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor, pairs: torch.Tensor
) -> torch.Tensor:
    """Eq. 6: ``-mean[log σ(<h_t, e_{t+1}>) + log(1 - σ(<h_t, ê_{t+1}>))]`` over the ``pairs`` that count.

    ``states`` ``h_t``, ``positives`` ``e_{t+1}`` and ``negatives`` ``ê_{t+1}`` are ``(B, L-1, D)``, aligned
    at ``t``; ``pairs`` ``(B, L-1)`` marks the pairs of real behaviours. No pair gives 0.
    """
    real = (states * positives).sum(dim=-1)  # (B, L-1)
    other = (states * negatives).sum(dim=-1)  # (B, L-1)
    per_pair = F.logsigmoid(real) + F.logsigmoid(-other)  # (B, L-1); log(1 - σ(x)) = log σ(-x)
    per_pair = torch.where(pairs, per_pair, torch.zeros_like(per_pair))
    return -per_pair.sum() / pairs.sum().clamp(min=1)


class DIEN(nn.Module):
    """``forward(batch) -> (B,)`` logits; ``logits_and_auxiliary_loss(batch)`` adds ``aux_weight`` × ``L_aux``."""

    def __init__(self, schema: Schema, config: DIENConfig):
        super().__init__()
        self.inputs = BehaviorInputs(schema, config.groups, [SHORT], config.embed_dim)
        d = self.inputs.item_dim  # behaviours, the target and the interests are all this wide
        self.extractor = GRUEncoder(d, d)
        self.attention = nn.Linear(d, d, bias=False)  # W of Eq. 7, applied to e_a
        self.evolution = InterestEvolution(d, d, config.evolution)
        self.mlp = MLP(self.inputs.plain_dim + d, config.mlp_dims, dropout=config.dropout, output_dim=1)
        self.aux_weight = config.aux_weight

    def attention_weights(self, interests: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Eq. 7: ``a_t = softmax_t(h_t W e_a)`` over the real steps, 0 at padding: ``(B, L)``."""
        query = self.attention(target)  # (B, d): W e_a
        scores = (interests * query.unsqueeze(1)).sum(dim=-1)  # (B, L): h_t W e_a
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        return torch.softmax(scores, dim=-1) * mask.to(scores.dtype)

    def _logits_and_interests(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """The logits, the extracted interests ``(B, L, d)``, the behaviours ``(B, L, d)`` and their mask ``(B, L)``."""
        behaviors, mask = self.inputs.sequence(batch)  # (B, L, d), (B, L)
        interests, _ = self.extractor(behaviors, mask)  # (B, L, d), zero at padding
        weights = self.attention_weights(interests, self.inputs.target(batch), mask)  # (B, L)
        evolved = self.evolution(interests, weights, mask)  # (B, d)
        logits = self.mlp(torch.cat([self.inputs.plain(batch), evolved], dim=1)).squeeze(-1)  # (B,)
        return logits, interests, behaviors, mask

    def logits_and_auxiliary_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        logits, interests, behaviors, mask = self._logits_and_interests(batch)
        if self.aux_weight == 0:
            return logits, logits.new_zeros(())
        negatives = self.inputs.embed([batch[HIST_NEG], batch[HIST_NEG_CATEGORY]])  # (B, L, d), same tables
        pairs = mask[:, :-1] & mask[:, 1:]  # (B, L-1): t and t+1 both real
        loss = next_behavior_loss(interests[:, :-1], behaviors[:, 1:], negatives[:, 1:], pairs)
        return logits, self.aux_weight * loss

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self._logits_and_interests(batch)[0]
