"""Reusable nn.Modules, one concept per file."""

from rechub_core.layers.attention import TransformerBlock
from rechub_core.layers.cross import CrossNet, CrossNetV2, LowRankMixtureCross
from rechub_core.layers.embedding import FeatureEmbedding, FlatInput, stack_dense
from rechub_core.layers.fm import FactorizationMachine
from rechub_core.layers.mlp import MLP

__all__ = [
    "MLP",
    "CrossNet",
    "CrossNetV2",
    "FactorizationMachine",
    "FeatureEmbedding",
    "FlatInput",
    "LowRankMixtureCross",
    "TransformerBlock",
    "stack_dense",
]
