"""Reusable nn.Modules, one concept per file."""

from rechub_core.layers.attention import TransformerBlock
from rechub_core.layers.capsule import CapsuleRouting, squash
from rechub_core.layers.cross import CrossNet, CrossNetV2, LowRankMixtureCross
from rechub_core.layers.embedding import FeatureEmbedding, FlatInput, stack_dense
from rechub_core.layers.fm import FactorizationMachine
from rechub_core.layers.gru import GRUEncoder
from rechub_core.layers.interest_readout import label_aware_attention, nearest_interest
from rechub_core.layers.mlp import MLP
from rechub_core.layers.self_attentive import SelfAttentiveInterests
from rechub_core.layers.tower import GroupInputs, Tower

__all__ = [
    "MLP",
    "CapsuleRouting",
    "CrossNet",
    "CrossNetV2",
    "FactorizationMachine",
    "FeatureEmbedding",
    "FlatInput",
    "GRUEncoder",
    "GroupInputs",
    "LowRankMixtureCross",
    "SelfAttentiveInterests",
    "Tower",
    "TransformerBlock",
    "label_aware_attention",
    "nearest_interest",
    "squash",
    "stack_dense",
]
