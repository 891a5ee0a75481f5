"""YouTube DNN candidate generation.

Covington, Adams & Sargin, "Deep Neural Networks for YouTube
Recommendations", RecSys 2016, Sec. 3. Recommendation as extreme
classification (Sec. 3.1): the user vector u scores every video by u . v_j.
The watch history is embedded and averaged (Sec. 3.2, where averaging beat
the other poolings tried; here a masked mean, so padding never counts and an
empty history gives 0), concatenated with the user's other features (Sec.
3.3: sparse ones embedded, dense ones as they are) and fed to a tower of
fully connected ReLU layers (Sec. 3.2 and 3.5, Fig. 3); the output of its
last ReLU layer, of width ``embed_dim``, is u. The item vector v_j is the
video's embedding in the softmax. The paper trains with a sampled softmax
corrected by importance weighting (Sec. 3.1): the trainer's ``Listwise``
with log-Q correction.

Departures: the softmax's item vectors are the rows of the table the history
reads (one embedding per video id, shared between input and output); the
paper does not tie them. The search-token history and the "example age"
feature (Sec. 3.3) are not in the data; the schema's user features stand in
for the paper's demographic and geographic ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from rechub_core.features import Schema
from rechub_core.layers import MLP, GroupInputs
from rechub_core.models.config import require_layers
from rechub_core.models.matching.inputs import item_and_history


@dataclass
class YouTubeDNNConfig:
    name: Literal["youtube_dnn"] = "youtube_dnn"
    embed_dim: int = 64  # item embeddings, and the width of the tower's last ReLU layer (u)
    hidden_dims: list[int] = field(default_factory=lambda: [256, 128])  # ReLU layers before the last one

    def __post_init__(self):
        if self.embed_dim < 1:
            raise ValueError(f"embed_dim must be at least 1, got {self.embed_dim}")
        if self.hidden_dims:
            require_layers(hidden_dims=self.hidden_dims)


class YouTubeDNN(nn.Module):
    """``user_embedding(batch) -> (B, D)``, ``item_embedding(batch) -> (N, D)``, score = dot product.

    >>> from rechub_core.features import SequenceFeature, SparseFeature
    >>> schema = Schema({"user": (SparseFeature("gender", 3), SequenceFeature("hist", 10, 4, shares="item_id")),
    ...                  "item": (SparseFeature("item_id", 10),)})
    >>> model = YouTubeDNN(schema, YouTubeDNNConfig(embed_dim=8, hidden_dims=[16])).eval()
    >>> model.user_embedding({"gender": torch.tensor([1]), "hist": torch.tensor([[0, 3, 5, 7]])}).shape
    torch.Size([1, 8])
    """

    def __init__(self, schema: Schema, config: YouTubeDNNConfig):
        super().__init__()
        self.config = config
        items, _ = item_and_history(schema, "YouTubeDNN")  # the watch history must be there
        # one table: the softmax's item ids, the history (reading item_id's rows) and the user's features
        self.inputs = GroupInputs(Schema({"user": schema.groups["user"], "item": (items,)}), config.embed_dim)
        # MLP puts a ReLU after every layer it is given, the last included (Fig. 3)
        self.tower = MLP(self.inputs.output_dim["user"], [*config.hidden_dims, config.embed_dim])

    def user_embedding(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x = self.inputs.fields(batch, "user")  # (B, F*D + Fd): embedded features, averaged history, dense
        return self.tower(x)  # (B, D)

    def item_embedding(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.inputs.embedding.lookup("item_id", batch["item_id"])  # (N, D)
