"""ComiRec-DR: multi-interest extraction by dynamic routing.

Cen et al., "Controllable Multi-Interest Framework for Recommendation", KDD
2020. The user's behaviours (item embeddings of the left-padded history) are
routed into K interest capsules (Sec. 3.2): predictions ê_j|i = W_j e_i with
one map per interest capsule, routing logits started at 0 and never trained,
coupling weights softmax(b_i) over the interests, u_j = squash(Σ_i c_ij ê_j|i),
b_ij += u_j^T ê_j|i, ``routing_iterations`` rounds (``CapsuleRouting`` with
``shared=False``). The capsules are the user's interests, ``(B, K, D)``.
``interest_for`` picks, for a training row, the interest with the largest
inner product with the positive item (Sec. 3.4). The paper trains with
a sampled softmax (Sec. 3.4). At serving time each interest retrieves
its own top-N; ``rechub_core.retrieval`` merges and aggregates them (Sec. 3.5).

Departure: the paper writes the map as W_ij, one per (behaviour, interest)
pair; here each interest has one map shared by all positions, so a behaviour's
prediction depends on the item, not on where it sits in the window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from rechub_core.features import Schema
from rechub_core.layers import CapsuleRouting, FeatureEmbedding, nearest_interest
from rechub_core.models.matching.inputs import item_and_history


@dataclass
class ComiRecDRConfig:
    name: Literal["comirec_dr"] = "comirec_dr"
    embed_dim: int = 64
    num_interests: int = 4
    routing_iterations: int = 3

    def __post_init__(self):
        if self.embed_dim < 1 or self.num_interests < 1 or self.routing_iterations < 1:
            raise ValueError(
                f"embed_dim ({self.embed_dim}), num_interests ({self.num_interests}) and "
                f"routing_iterations ({self.routing_iterations}) must be at least 1"
            )


class ComiRecDR(nn.Module):
    """``user_embedding(batch) -> (B, K, D)``, ``item_embedding(batch) -> (N, D)``, score = dot product.

    >>> from rechub_core.features import SequenceFeature, SparseFeature
    >>> schema = Schema({"user": (SequenceFeature("hist", 10, 4, shares="item_id"),),
    ...                  "item": (SparseFeature("item_id", 10),)})
    >>> model = ComiRecDR(schema, ComiRecDRConfig(embed_dim=8, num_interests=2)).eval()
    >>> model.user_embedding({"hist": torch.tensor([[0, 3, 5, 7]])}).shape
    torch.Size([1, 2, 8])
    """

    def __init__(self, schema: Schema, config: ComiRecDRConfig):
        super().__init__()
        self.config = config
        items, history = item_and_history(schema, "ComiRec-DR")
        self.history_name = history.name
        self.embedding = FeatureEmbedding((items, history), config.embed_dim)  # shared item table
        self.routing = CapsuleRouting(
            config.embed_dim,
            config.embed_dim,
            num_interests=config.num_interests,
            max_len=history.max_len,
            iterations=config.routing_iterations,
            shared=False,
        )

    def user_embedding(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        ids = batch[self.history_name]  # (B, L)
        return self.routing(self.embedding.lookup(self.history_name, ids), ids > 0)  # (B, K, D)

    def interest_for(self, user: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nearest_interest(user, target)  # (B, D)

    def item_embedding(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.embedding.lookup("item_id", batch["item_id"])  # (N, D)
