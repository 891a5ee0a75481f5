"""The one explicit registry of models: family → registry name → (model, config).

Models are looked up here by the name a config carries, never through
``getattr`` or ``eval`` on a string. Each config dataclass has a ``name``
literal, so ``params.yaml`` validates against the union of a family's configs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import nn

from rechub_core.features import Schema
from rechub_core.models.matching.dssm import DSSM, DSSMConfig
from rechub_core.models.matching.sasrec import SASRec, SASRecConfig
from rechub_core.models.multi_task.mmoe import MMoE, MMoEConfig
from rechub_core.models.ranking.dcnv2 import DCNV2, DCNV2Config
from rechub_core.models.ranking.deepfm import DeepFM, DeepFMConfig
from rechub_core.models.ranking.linear import LogisticRegression, LogisticRegressionConfig

Family = Literal["matching", "ranking", "multi_task"]
FAMILIES: tuple[Family, ...] = ("matching", "ranking", "multi_task")


# how a matching model trains: its two towers in any of the trainer's softmax modes,
# or the paper's own next-item objective over the user's sequence (sequential models)
Objective = Literal["two_tower", "next_item"]


@dataclass(frozen=True)
class Entry:
    model: type[nn.Module]
    config: type
    objective: Objective = "two_tower"


REGISTRY: dict[Family, dict[str, Entry]] = {
    "matching": {
        "dssm": Entry(DSSM, DSSMConfig),
        "sasrec": Entry(SASRec, SASRecConfig, objective="next_item"),
    },
    "ranking": {
        "deepfm": Entry(DeepFM, DeepFMConfig),
        "dcnv2": Entry(DCNV2, DCNV2Config),
    },
    "multi_task": {
        "mmoe": Entry(MMoE, MMoEConfig),
    },
}


# Reference models that evaluation compares against; resolvable by name, not offered in params.
BASELINES: dict[Family, dict[str, Entry]] = {
    "matching": {},
    "ranking": {"lr": Entry(LogisticRegression, LogisticRegressionConfig)},
    "multi_task": {},
}


def names() -> dict[str, list[str]]:
    """Registry names by family, as ``rechub models --json`` prints them."""
    return {family: sorted(REGISTRY[family]) for family in FAMILIES}


def entry(family: Family, name: str) -> Entry:
    try:
        return REGISTRY[family].get(name) or BASELINES[family][name]
    except KeyError:
        raise KeyError(f"no {family} model named {name!r}; registered: {sorted(REGISTRY[family])}") from None


def build(family: Family, config, schema: Schema, **kwargs) -> nn.Module:
    """Instantiate the model a config names, e.g. ``build("ranking", DeepFMConfig(), schema)``."""
    return entry(family, config.name).model(schema, config, **kwargs)
