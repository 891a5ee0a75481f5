"""MIND: multi-interest network with dynamic routing.

Li et al., "Multi-Interest Network with Dynamic Routing for Recommendation at
Tmall", CIKM 2019. The user's behaviours (item embeddings of the left-padded
history) are routed into K interest capsules by B2I dynamic routing (Sec.
4.2; ``CapsuleRouting`` with one shared bilinear map S, routing logits started
from a fixed N(0, 1) draw and never trained, ``routing_iterations`` rounds).
With ``dynamic_interests`` a user with |I_u| behaviours gets
K'_u = max(1, min(K, floor(log2 |I_u|))) interests (Sec. 4.2); the
shapes stay ``(B, K, D)``: inactive capsules are left out of the routing
softmax and their output slots hold a copy of the first interest, so they
retrieve nothing new. Each capsule, concatenated with the user's profile
embeddings (the user group's attribute features; ``user_id`` only with
``profile_user_id``, as the paper's profile is attributes such as age and
gender), goes through ``hidden_dims`` ReLU layers and a linear map to
dimension D (Sec. 4.3). ``interest_for`` is the label-aware attention
softmax(pow(V e, p)) of Sec. 4.4 with p = ``pow_p``, over the active
interests only; the default p = inf is the paper's hard-attention limit
(the interest closest to the label), which the paper reports works best
and matches serving, where an item scores max_k v_k^T e. The paper trains
with a sampled softmax (Sec. 4.4).

Departures: items are embedded by ``item_id`` alone (the paper also pools
category and brand embeddings), since the history holds only item ids and
input and output item embeddings share one table; the pow keeps the sign,
sign(x)|x|^p (see ``rechub_core.layers.interest_readout``); the tower's last
layer is linear (no ReLU), so user vectors are not confined to the positive
orthant; by default the tower has no hidden ReLU layer (``hidden_dims=[]``):
with one, recall@50 on the learning-test data fell from 0.558 to 0.500.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from rechub_core.features import Schema
from rechub_core.layers import MLP, CapsuleRouting, FeatureEmbedding, FlatInput, label_aware_attention
from rechub_core.models.config import require_layers
from rechub_core.models.matching.inputs import item_and_history


@dataclass
class MINDConfig:
    name: Literal["mind"] = "mind"
    embed_dim: int = 64
    num_interests: int = 4
    routing_iterations: int = 3
    dynamic_interests: bool = True
    hidden_dims: list[int] = field(default_factory=list)
    pow_p: float = math.inf
    profile_user_id: bool = False

    def __post_init__(self):
        if self.embed_dim < 1 or self.num_interests < 1 or self.routing_iterations < 1:
            raise ValueError(
                f"embed_dim ({self.embed_dim}), num_interests ({self.num_interests}) and "
                f"routing_iterations ({self.routing_iterations}) must be at least 1"
            )
        if self.hidden_dims:
            require_layers(hidden_dims=self.hidden_dims)
        if not self.pow_p >= 1.0:
            raise ValueError(f"pow_p must be >= 1 (below 1 its gradient is unbounded at 0), got {self.pow_p}")


def active_interests(mask: torch.Tensor, num_interests: int) -> torch.Tensor:
    """``(B, L)`` valid behaviours → ``(B, K)`` bool: slot j is active iff j < max(1, min(K, floor(log2 n)))."""
    count = mask.sum(dim=1, keepdim=True)  # (B, 1)
    # j >= 1 is active iff 2^(j+1) <= n (j < floor(log2 n)); slot 0 always is
    needed = torch.tensor([0] + [2 ** (j + 1) for j in range(1, num_interests)], device=mask.device)  # (K,)
    return needed <= count  # (B, K)


class MIND(nn.Module):
    """``user_embedding(batch) -> (B, K, D)``, ``item_embedding(batch) -> (N, D)``, score = dot product.

    >>> from rechub_core.features import SequenceFeature, SparseFeature
    >>> schema = Schema({"user": (SparseFeature("gender", 3), SequenceFeature("hist", 10, 4, shares="item_id")),
    ...                  "item": (SparseFeature("item_id", 10),)})
    >>> model = MIND(schema, MINDConfig(embed_dim=8, num_interests=2)).eval()
    >>> model.user_embedding({"gender": torch.tensor([1]), "hist": torch.tensor([[0, 3, 5, 7]])}).shape
    torch.Size([1, 2, 8])
    """

    def __init__(self, schema: Schema, config: MINDConfig):
        super().__init__()
        self.config = config
        items, history = item_and_history(schema, "MIND")
        self.history_name = history.name
        self.embedding = FeatureEmbedding((items, history), config.embed_dim)  # shared item table
        self.routing = CapsuleRouting(
            config.embed_dim,
            config.embed_dim,
            num_interests=config.num_interests,
            max_len=history.max_len,
            iterations=config.routing_iterations,
            shared=True,
        )
        leave_out = {history.name} | (set() if config.profile_user_id else {"user_id"})
        profile = tuple(f for f in schema.groups["user"] if f.name not in leave_out)
        self.profile = FlatInput(profile, config.embed_dim) if profile else None
        profile_dim = self.profile.output_dim if self.profile else 0
        # ReLU hidden layers (Sec. 4.3), then a linear map to D so user vectors can take either sign
        self.tower = MLP(config.embed_dim + profile_dim, config.hidden_dims, output_dim=config.embed_dim)

    def user_embedding(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        ids = batch[self.history_name]  # (B, L)
        mask = ids > 0  # (B, L)
        behaviours = self.embedding.lookup(self.history_name, ids)  # (B, L, D)
        active = active_interests(mask, self.config.num_interests) if self.config.dynamic_interests else None
        capsules = self.routing(behaviours, mask, active)  # (B, K, D)
        if self.profile is not None:
            profile = self.profile(batch).unsqueeze(1).expand(-1, capsules.shape[1], -1)  # (B, K, P)
            capsules = torch.cat([capsules, profile], dim=-1)  # (B, K, D + P)
        user = self.tower(capsules)  # (B, K, D)
        if active is None:
            return user
        return torch.where(active.unsqueeze(-1), user, user[:, :1])  # (B, K, D): inactive = copy of the first

    def interest_for(self, user: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Label-aware attention ``(B, K, D), (B, D) -> (B, D)``; copies of the first interest count once."""
        slot = torch.arange(user.shape[1], device=user.device)  # (K,)
        copy = (user == user[:, :1]).all(dim=-1) & (slot > 0)  # (B, K)
        return label_aware_attention(user, target, self.config.pow_p, active=~copy)

    def item_embedding(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.embedding.lookup("item_id", batch["item_id"])  # (N, D)
