"""DIN: Deep Interest Network.

Zhou et al., "Deep Interest Network for Click-Through Rate Prediction", KDD
2018. The base model (``din_base``: every feature embedded, one table shared by
the behaviours and the candidate item, Sec. 4.1) with its sum pooling replaced
by the local activation unit (Sec. 4.3, Eq. 3, Fig. 2 right,
``ActivationUnitAttention``): the user's interest for the candidate ``t`` is
``Σ_j a(e_j, t) e_j`` over the real behaviours ``e_j`` (``hist`` with
``hist_category``), ``a`` a small network over ``[e_j, t, e_j - t, e_j ⊙ t]``
with one hidden layer of 36 (Fig. 2), weights not normalised by a softmax.
That vector, the user profile's and the candidate item's embeddings (dense
columns appended) go to the same MLP as the base model (200-80 → logit).

Both the activation unit and the MLP use Dice (Sec. 5.2,
``rechub_core.layers.dice``), batch statistics in training and moving averages
at inference; in the activation unit the statistics run over real behaviours
only. ``activation: prelu`` uses PReLU instead (the paper's comparison, Sec.
6.7). Mini-batch aware regularisation (Sec. 5.1, Eq. 11) is the base model's
``l2_weight`` (default 0 = off; see ``din_base`` for how ``n_j`` is counted).

Departures: as for ``din_base`` (no dropout by default, dense columns appended,
``hist_dt`` unread). The unit's input is the authors' released code's concat;
their code also softmax-normalises the weights, which the paper's Sec. 4.3
argues against and which is not done here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

from rechub_core.features import Schema
from rechub_core.layers.activation_unit import ActivationUnitAttention
from rechub_core.models.config import require_layers
from rechub_core.models.ranking.din_base import DINBase, DINBaseConfig


@dataclass
class DINConfig(DINBaseConfig):
    name: Literal["din"] = "din"
    activation: Literal["dice", "prelu"] = "dice"  # in the activation unit and the MLP
    attention_dims: list[int] = field(default_factory=lambda: [36])  # the activation unit's hidden layers

    def __post_init__(self):
        super().__post_init__()
        require_layers(attention_dims=self.attention_dims)


class DIN(DINBase):
    """``forward(batch) -> (B,)`` logits; ``logits_and_auxiliary_loss(batch)`` adds the regulariser."""

    def __init__(self, schema: Schema, config: DINConfig):
        super().__init__(schema, config)
        self.attention = ActivationUnitAttention(self.inputs.item_dim, config.attention_dims, config.activation)

    def interest(self, batch: dict[str, torch.Tensor], behaviors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The behaviours weighted by their activation for the candidate item, ``(B, A*D)``."""
        return self.attention(self.inputs.target(batch), behaviors, mask)  # (B, A*D)
