"""Reusable nn.Modules, one concept per file."""

from rechub_core.layers.activation_unit import ActivationUnitAttention
from rechub_core.layers.attention import TransformerBlock
from rechub_core.layers.behavior import BehaviorInputs
from rechub_core.layers.behavior_search import SoftSearch, hard_search
from rechub_core.layers.bilinear import BilinearInteraction
from rechub_core.layers.bridge import BridgeModule
from rechub_core.layers.bst_block import BSTBlock
from rechub_core.layers.capsule import CapsuleRouting, squash
from rechub_core.layers.cen import CENet
from rechub_core.layers.cross import CrossNet, CrossNetV2, LowRankMixtureCross
from rechub_core.layers.crossed import CrossedIds
from rechub_core.layers.dice import Dice
from rechub_core.layers.embedding import FeatureEmbedding, FieldEmbedding, FlatInput, stack_dense
from rechub_core.layers.experts import Experts, ExtractionLevel, gate
from rechub_core.layers.field_aware import FieldAwareEmbedding, FieldAwareInteraction
from rechub_core.layers.fm import FactorizationMachine
from rechub_core.layers.gru import GRUEncoder
from rechub_core.layers.interacting import InteractingLayer
from rechub_core.layers.interest_gru import AGRUCell, AIGRUCell, AUGRUCell, InterestEvolution
from rechub_core.layers.interest_readout import label_aware_attention, nearest_interest
from rechub_core.layers.mlp import MLP
from rechub_core.layers.ntm import NTMMemory
from rechub_core.layers.pair_attention import AttentionalPairPooling, field_pairs
from rechub_core.layers.regulation import RegulationModule
from rechub_core.layers.self_attentive import SelfAttentiveInterests
from rechub_core.layers.senet import SENET
from rechub_core.layers.simhash import SimHash
from rechub_core.layers.target_attention import MultiHeadTargetAttention
from rechub_core.layers.task_scale import TaskScale
from rechub_core.layers.tower import GroupInputs, Tower

__all__ = [
    "MLP",
    "SENET",
    "AGRUCell",
    "AIGRUCell",
    "AUGRUCell",
    "ActivationUnitAttention",
    "AttentionalPairPooling",
    "BSTBlock",
    "BehaviorInputs",
    "BilinearInteraction",
    "BridgeModule",
    "CENet",
    "CapsuleRouting",
    "CrossNet",
    "CrossNetV2",
    "CrossedIds",
    "Dice",
    "Experts",
    "ExtractionLevel",
    "FactorizationMachine",
    "FeatureEmbedding",
    "FieldAwareEmbedding",
    "FieldAwareInteraction",
    "FieldEmbedding",
    "FlatInput",
    "GRUEncoder",
    "GroupInputs",
    "InteractingLayer",
    "InterestEvolution",
    "LowRankMixtureCross",
    "MultiHeadTargetAttention",
    "NTMMemory",
    "RegulationModule",
    "SelfAttentiveInterests",
    "SimHash",
    "SoftSearch",
    "Tower",
    "TransformerBlock",
    "field_pairs",
    "gate",
    "hard_search",
    "label_aware_attention",
    "nearest_interest",
    "squash",
    "stack_dense",
]
