"""Reusable nn.Modules, one concept per file."""

from rechub_core.layers.embedding import FeatureEmbedding, FlatInput, stack_dense
from rechub_core.layers.fm import FactorizationMachine
from rechub_core.layers.mlp import MLP

__all__ = ["MLP", "FactorizationMachine", "FeatureEmbedding", "FlatInput", "stack_dense"]
