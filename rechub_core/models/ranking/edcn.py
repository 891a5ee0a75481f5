"""EDCN.

Chen et al., "Enhancing Explicit and Implicit Feature Interactions via
Information Sharing for Parallel Deep CTR Models", DLP-KDD 2021 (CIKM 2021
proceedings). DCN's parallel cross and deep networks, made to share
information at every layer:

- every feature is one field embedding (``FieldEmbedding``; a dense value
  scales a vector of its own), stacked into ``e`` of width ``d = F·D``;
- before layer ``l``, a regulation module (``RegulationModule``, Eq. 7-8)
  gives the cross and the deep network each its own field-wise gated copy
  ``x̃_l, h̃_l`` of the layer's input (``e`` for the first layer, the previous
  bridge output after);
- the cross layer is DCN's vector cross,
  ``x_{l+1} = x_0 (x̃_l^T w_l) + b_l + x̃_l``, where ``x_0`` is the first
  layer's gated cross input; the deep layer is ``h_{l+1} = ReLU(W_l h̃_l + b_l)``,
  ``W_l`` of size ``d × d`` — both keep width ``d``, as the bridge needs;
- a bridge module (``BridgeModule``) fuses them, ``f_{l+1} = bridge(x_{l+1}, h_{l+1})``,
  with the paper's four choices; ``f`` feeds the next layer's regulation;
- the logit is a linear map of ``[x_L ‖ h_L ‖ f_L]``, the last cross, deep
  and bridge outputs concatenated.

Beyond the paper's equations, two things, each switchable:

- ``batch_norm`` (default on, as in the authors' released configuration):
  each gated copy is batch-normalised with one mean and variance over all of
  its ``F·D`` entries (the authors' ``BatchNorm2d(1)``). The softmax gates sum
  to 1, so at the start they scale every field by ``1/F``; without this
  normalisation the cross/deep inputs are ``F`` times smaller than the
  embeddings, the Hadamard bridge multiplies two such small vectors, and the
  signal shrinks geometrically with depth (measured: bridge outputs ~1e-5,
  1e-8, 1e-11 over three layers at initialisation, test AUC ≈ logistic
  regression). One statistic over all entries keeps the gates' relative field
  weights, which a per-dimension BatchNorm would cancel exactly.
- ``dropout`` after each deep layer's ReLU, the repo's usual MLP
  regularisation.

``batch_norm=False, dropout=0`` is the paper's network exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

import torch
from torch import nn

from rechub_core.features import Group, Schema
from rechub_core.layers.bridge import BridgeModule, BridgeType
from rechub_core.layers.embedding import FieldEmbedding
from rechub_core.layers.mlp import MLP
from rechub_core.layers.regulation import RegulationModule
from rechub_core.models.config import require_dropout, require_layers, require_positive


@dataclass
class EDCNConfig:
    name: Literal["edcn"] = "edcn"
    embed_dim: int = 16
    num_layers: int = 3  # cross layers = deep layers = bridge and regulation modules
    bridge: BridgeType = "hadamard_product"
    temperature: float = 1.0  # τ of the regulation module's softmax over fields
    batch_norm: bool = True  # one-statistic BatchNorm of each gated input (authors' code)
    dropout: float = 0.1
    groups: list[Group] = field(default_factory=lambda: ["user", "item"])

    def __post_init__(self):
        require_layers(groups=self.groups)
        require_positive(embed_dim=self.embed_dim, num_layers=self.num_layers)
        if self.bridge not in get_args(BridgeType):
            raise ValueError(f"bridge must be one of {get_args(BridgeType)}, got {self.bridge!r}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")
        require_dropout(self.dropout)


class EDCN(nn.Module):
    """``forward(batch) -> (B,)`` logits.

    >>> from rechub_core.features import DenseFeature, SparseFeature
    >>> schema = Schema({"user": (SparseFeature("user_id", 5),), "item": (DenseFeature("price"),)})
    >>> model = EDCN(schema, EDCNConfig(embed_dim=4, bridge="concatenation"))
    >>> model({"user_id": torch.tensor([1, 2]), "price": torch.tensor([0.5, -1.0])}).shape
    torch.Size([2])
    """

    def __init__(self, schema: Schema, config: EDCNConfig):
        super().__init__()
        self.embedding = FieldEmbedding(schema.features(*config.groups), config.embed_dim)
        fields, d, n = self.embedding.num_fields, self.embedding.num_fields * config.embed_dim, config.num_layers
        self.regulation = nn.ModuleList(RegulationModule(fields, config.embed_dim, config.temperature) for _ in range(n))
        bound = d**-0.5
        self.cross_weight = nn.Parameter(torch.empty(n, d).uniform_(-bound, bound))  # w_l: (L, d)
        self.cross_bias = nn.Parameter(torch.zeros(n, d))  # b_l: (L, d)
        self.deep = nn.ModuleList(MLP(d, [d], dropout=config.dropout) for _ in range(n))  # ReLU(W_l h + b_l)
        self.bridge = nn.ModuleList(BridgeModule(d, config.bridge) for _ in range(n))
        # per layer, one for the cross and one for the deep input; num_features=1: one statistic over all F·D
        self.norm = nn.ModuleList(nn.BatchNorm1d(1) for _ in range(2 * n)) if config.batch_norm else None
        self.head = nn.Linear(3 * d, 1)

    def _normalised(self, index: int, x: torch.Tensor) -> torch.Tensor:
        if self.norm is None:
            return x
        return self.norm[index](x.unsqueeze(1)).squeeze(1)  # (B, 1, d) normalised over B and d -> (B, d)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        f = self.embedding(batch).flatten(start_dim=1)  # e: (B, F·D)
        x0 = None
        for layer, (regulate, deep, bridge) in enumerate(zip(self.regulation, self.deep, self.bridge)):
            x_in, h_in = regulate(f)  # field-gated copies: (B, d) each
            x_in, h_in = self._normalised(2 * layer, x_in), self._normalised(2 * layer + 1, h_in)
            x0 = x_in if x0 is None else x0
            scale = x_in @ self.cross_weight[layer].unsqueeze(-1)  # x̃_l^T w_l: (B, 1)
            x = x0 * scale + self.cross_bias[layer] + x_in  # (B, d)
            h = deep(h_in)  # (B, d)
            f = bridge(x, h)  # (B, d)
        return self.head(torch.cat([x, h, f], dim=1)).squeeze(-1)  # (B, 3d) -> (B,)
