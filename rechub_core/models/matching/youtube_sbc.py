"""YouTube's sampling-bias-corrected two-tower model.

Yi et al., "Sampling-Bias-Corrected Neural Modeling for Large Corpus Item
Recommendations", RecSys 2019. Two towers of ReLU layers (Sec. 3, Fig. 1):
the query tower over the user's features and the candidate tower over the
item's. As in the YouTube system (Sec. 5), the query holds the "seed" item
(here the user's most recent history item, when ``seed_item``) and the
average of the watch history's item embeddings, besides the user features;
item ids share one embedding table between the seed, the history and the
candidate. Both outputs are L2-normalised (the paper's embedding
normalisation, Sec. 3); the temperature and the in-batch softmax corrected by
the streaming frequency estimate of Sec. 4 (Algorithm 2) are the trainer's
(``InBatch(logq_correction="streaming")``).

Departures: there is no separate seed video in the data, so the latest
history item stands in for it; the paper's other features (channel, video
and user categorical features) are the schema's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from rechub_core.features import Schema
from rechub_core.layers import GroupInputs, Tower
from rechub_core.models.config import require_layers
from rechub_core.models.matching.inputs import history_feature


@dataclass
class YouTubeSBCConfig:
    name: Literal["youtube_sbc"] = "youtube_sbc"
    embed_dim: int = 32
    tower_dims: list[int] = field(default_factory=lambda: [128, 64])  # hidden ReLU layers, then the output
    seed_item: bool = True  # the query also sees the latest history item's embedding on its own

    def __post_init__(self):
        require_layers(tower_dims=self.tower_dims)
        if self.embed_dim < 1:
            raise ValueError(f"embed_dim must be at least 1, got {self.embed_dim}")


class YouTubeSBC(nn.Module):
    """``user_embedding(batch) -> (B, D)``, ``item_embedding(batch) -> (N, D)``, unit vectors.

    >>> from rechub_core.features import SequenceFeature, SparseFeature
    >>> schema = Schema({"user": (SequenceFeature("hist", 10, 4, shares="item_id"),),
    ...                  "item": (SparseFeature("item_id", 10),)})
    >>> model = YouTubeSBC(schema, YouTubeSBCConfig(tower_dims=[16, 8])).eval()
    >>> model.user_embedding({"hist": torch.tensor([[0, 3, 5, 7]])}).shape
    torch.Size([1, 8])
    """

    def __init__(self, schema: Schema, config: YouTubeSBCConfig):
        super().__init__()
        self.config = config
        self.history_name = history_feature(schema).name
        self.inputs = GroupInputs(schema, config.embed_dim)
        *hidden, out = config.tower_dims
        seed_dim = config.embed_dim if config.seed_item else 0
        self.query_tower = Tower(self.inputs.output_dim["user"] + seed_dim, hidden, output_dim=out, normalize=True)
        self.candidate_tower = Tower(self.inputs.output_dim["item"], hidden, output_dim=out, normalize=True)

    def user_embedding(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x = self.inputs.fields(batch, "user")  # (B, F*D + Fd): user features and the averaged history
        if self.config.seed_item:
            last = batch[self.history_name][:, -1]  # (B,): left-padded, so the most recent item; 0 if none
            seed = self.inputs.embedding.lookup(self.history_name, last)  # (B, D)
            seed = seed * (last > 0).unsqueeze(-1).to(seed.dtype)  # (B, D): an empty history has no seed
            x = torch.cat([x, seed], dim=1)  # (B, F*D + Fd + D)
        return self.query_tower(x)  # (B, D)

    def item_embedding(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.candidate_tower(self.inputs.fields(batch, "item"))  # (N, D)
