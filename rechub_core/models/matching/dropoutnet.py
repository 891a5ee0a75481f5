"""DropoutNet: a two-tower model trained to serve cold users and items.

Volkovs, Yu & Poutanen, "DropoutNet: Addressing Cold Start in Recommender
Systems", NeurIPS 2017. Each side's tower f_U(U_u, Φ_u) (f_V alike) takes a
preference vector U_u and content Φ_u: the content goes through a transform
(one dense layer), is concatenated with the preference vector and passes
through deep layers; the score is the inner product f_U · f_V. Input dropout
(Sec. 4.1): in training, each row's preference input is set to zero with
probability ``dropout_rate`` (a Bernoulli draw per row, independently for the
user and the item tower, not rescaled), so the towers learn to serve from
content alone; at inference a cold id (id 0, unknown) gets a zero preference
input, which the towers were trained on. Content: the user group's features
other than ``user_id`` (the pooled history included); the item group's other
than ``item_id`` (category, brand, price, ...).

Departures: the paper's preference vectors are the fixed latent factors of a
pretrained model, and it regresses f_U · f_V on that model's scores
U_u · V_v; there is no pretrained model in the pipeline, so the preference
vectors are ``user_id`` / ``item_id`` embeddings learned jointly (the
item's shared with the history) and the objective is the in-batch softmax
(``InBatch``). The paper's "user/item transforms" (a cold item's preference
replaced by the mean of its users' vectors) are left out, and the hidden
layers use ReLU rather than the paper's tanh.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from rechub_core.features import Schema, SparseFeature
from rechub_core.layers import MLP, GroupInputs, Tower
from rechub_core.models.config import require_layers


@dataclass
class DropoutNetConfig:
    name: Literal["dropoutnet"] = "dropoutnet"
    embed_dim: int = 32  # preference vectors and content fields
    content_dim: int = 64  # output of the content transform
    tower_dims: list[int] = field(default_factory=lambda: [128, 64])  # deep layers, then the output
    dropout_rate: float = 0.5  # fraction of training rows whose preference input is zeroed, per side

    def __post_init__(self):
        require_layers(tower_dims=self.tower_dims)
        if self.embed_dim < 1 or self.content_dim < 1:
            raise ValueError(f"embed_dim ({self.embed_dim}) and content_dim ({self.content_dim}) must be at least 1")
        if not 0.0 <= self.dropout_rate <= 1.0:
            raise ValueError(f"dropout_rate must be in [0, 1], got {self.dropout_rate}")


class DropoutTower(nn.Module):
    """``(preference (B, E), content (B, C)) -> (B, D)``: content transform, concatenation, deep layers."""

    def __init__(self, content_in: int, config: DropoutNetConfig):
        super().__init__()
        self.content = MLP(content_in, [config.content_dim])
        *hidden, out = config.tower_dims
        self.deep = Tower(config.embed_dim + config.content_dim, hidden, output_dim=out)

    def forward(self, preference: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
        return self.deep(torch.cat([preference, self.content(content)], dim=1))  # (B, D)


class DropoutNet(nn.Module):
    """``user_embedding(batch) -> (B, D)``, ``item_embedding(batch) -> (N, D)``, score = dot product.

    >>> from rechub_core.features import SequenceFeature
    >>> schema = Schema({"user": (SparseFeature("user_id", 5), SequenceFeature("hist", 10, 4, shares="item_id")),
    ...                  "item": (SparseFeature("item_id", 10), SparseFeature("category", 3))})
    >>> model = DropoutNet(schema, DropoutNetConfig(tower_dims=[16, 8])).eval()
    >>> model.item_embedding({"item_id": torch.tensor([0, 4]), "category": torch.tensor([1, 2])}).shape
    torch.Size([2, 8])
    """

    def __init__(self, schema: Schema, config: DropoutNetConfig):
        super().__init__()
        self.config = config
        for group, name in (("user", "user_id"), ("item", "item_id")):
            if not any(isinstance(f, SparseFeature) and f.name == name for f in schema.groups.get(group, ())):
                raise ValueError(f"DropoutNet needs a sparse {name!r} feature in the schema's {group!r} group")
        # ids are embedded as preference vectors, all other features are content
        self.inputs = GroupInputs(schema, config.embed_dim, leave_out=("user_id", "item_id"))
        self.user_tower = DropoutTower(self.inputs.output_dim["user"], config)
        self.item_tower = DropoutTower(self.inputs.output_dim["item"], config)

    def preference(self, name: str, ids: torch.Tensor) -> torch.Tensor:
        """The id's embedding ``(B,) -> (B, E)``; zero for unknown ids (0) and, in training, dropped rows."""
        keep = ids > 0  # (B,)
        if self.training and self.config.dropout_rate > 0:
            keep = keep & (torch.rand(ids.shape, device=ids.device) >= self.config.dropout_rate)  # (B,) Bernoulli
        vectors = self.inputs.embedding.lookup(name, ids)  # (B, E)
        return vectors * keep.unsqueeze(-1).to(vectors.dtype)  # (B, E)

    def user_embedding(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        preference = self.preference("user_id", batch["user_id"])  # (B, E)
        return self.user_tower(preference, self.inputs.fields(batch, "user"))  # (B, D)

    def item_embedding(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        preference = self.preference("item_id", batch["item_id"])  # (N, E)
        return self.item_tower(preference, self.inputs.fields(batch, "item"))  # (N, D)
