"""The one explicit registry of models: family → registry name → (model, config).

Models are looked up here by the name a config carries, never through
``getattr`` or ``eval`` on a string. Each config dataclass has a ``name``
literal, so ``params.yaml`` validates against the union of a family's configs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from torch import nn

from rechub_core.features import Schema
from rechub_core.models.matching.comirec_dr import ComiRecDR, ComiRecDRConfig
from rechub_core.models.matching.comirec_sa import ComiRecSA, ComiRecSAConfig
from rechub_core.models.matching.dropoutnet import DropoutNet, DropoutNetConfig
from rechub_core.models.matching.dssm import DSSM, DSSMConfig
from rechub_core.models.matching.facebook_dssm import FacebookDSSM, FacebookDSSMConfig
from rechub_core.models.matching.gru4rec import GRU4Rec, GRU4RecConfig
from rechub_core.models.matching.kuaishou_ebr import KuaishouEBR, KuaishouEBRConfig
from rechub_core.models.matching.mind import MIND, MINDConfig
from rechub_core.models.matching.narm import NARM, NARMConfig
from rechub_core.models.matching.sasrec import SASRec, SASRecConfig
from rechub_core.models.matching.youtube_sbc import YouTubeSBC, YouTubeSBCConfig
from rechub_core.models.matching.youtube_dnn import YouTubeDNN, YouTubeDNNConfig
from rechub_core.models.matching.stamp import STAMP, STAMPConfig
from rechub_core.models.matching.sine import SINE, SINEConfig
from rechub_core.models.multi_task.aitm import AITM, AITMConfig
from rechub_core.models.multi_task.esmm import ESMM, ESMMConfig
from rechub_core.models.multi_task.mmoe import MMoE, MMoEConfig
from rechub_core.models.multi_task.cgc import CGC, CGCConfig
from rechub_core.models.multi_task.moe import MoE, MoEConfig
from rechub_core.models.multi_task.ple import PLE, PLEConfig
from rechub_core.models.multi_task.shared_bottom import SharedBottom, SharedBottomConfig
from rechub_core.models.ranking.afm import AFM, AFMConfig
from rechub_core.models.ranking.autoint import AutoInt, AutoIntConfig
from rechub_core.models.ranking.edcn import EDCN, EDCNConfig
from rechub_core.models.ranking.din_base import DINBase, DINBaseConfig
from rechub_core.models.ranking.din import DIN, DINConfig
from rechub_core.models.ranking.dien import DIEN, DIENConfig
from rechub_core.models.ranking.bst import BST, BSTConfig
from rechub_core.models.ranking.sim import SIM, SIMConfig
from rechub_core.models.ranking.eta import ETA, ETAConfig
from rechub_core.models.ranking.mimn import MIMN, MIMNConfig
from rechub_core.models.ranking.dcn import DCN, DCNConfig
from rechub_core.models.ranking.dcnv2 import DCNV2, DCNV2Config
from rechub_core.models.ranking.deepffm import DeepFFM, DeepFFMConfig
from rechub_core.models.ranking.deepfm import DeepFM, DeepFMConfig
from rechub_core.models.ranking.fat_deepffm import FATDeepFFM, FATDeepFFMConfig
from rechub_core.models.ranking.fibinet import FiBiNET, FiBiNETConfig
from rechub_core.models.ranking.linear import LogisticRegression, LogisticRegressionConfig
from rechub_core.models.ranking.widedeep import WideDeep, WideDeepConfig
from rechub_core.training.objectives import (
    DivideAndConquer,
    FullSoftmax,
    InBatch,
    Listwise,
    NextItem,
    SessionParallel,
    Triplet,
)

Family = Literal["matching", "ranking", "multi_task"]
FAMILIES: tuple[Family, ...] = ("matching", "ranking", "multi_task")


@dataclass(frozen=True)
class Entry:
    """A registered model. For matching models, ``paper`` is the objective (a config from
    ``rechub_core.training.objectives``) its paper trains with, which ``rechub models``, the
    learning tests and the README table use; ``negatives`` the keys of params.yaml's
    ``negative_sample`` section its paper's recipe sets (for objectives that score sampled
    negatives); ``own`` lists the model-specific objectives it supports besides the shared
    two-tower ones."""

    model: type[nn.Module]
    config: type
    paper: Any = None
    negatives: dict[str, Any] = field(default_factory=dict)
    own: tuple[type, ...] = ()


REGISTRY: dict[Family, dict[str, Entry]] = {
    "matching": {
        "dssm": Entry(DSSM, DSSMConfig, paper=InBatch()),
        "facebook_dssm": Entry(
            # easy negatives drawn at random from the whole pool, many per online hard one (the paper blends 100:1; 32:1 here)
            FacebookDSSM, FacebookDSSMConfig, paper=Triplet(margin=0.2, hard_negatives=1),
            negatives={"distribution": "uniform", "num_negatives": 32},
        ),
        "youtube_sbc": Entry(
            YouTubeSBC, YouTubeSBCConfig, paper=InBatch(temperature=0.05, logq_correction="streaming")
        ),
        "dropoutnet": Entry(DropoutNet, DropoutNetConfig, paper=InBatch()),
        "sasrec": Entry(SASRec, SASRecConfig, paper=NextItem(), own=(NextItem,)),
        "gru4rec": Entry(GRU4Rec, GRU4RecConfig, paper=SessionParallel(), own=(SessionParallel,)),
        "narm": Entry(NARM, NARMConfig, paper=FullSoftmax()),
        "mind": Entry(MIND, MINDConfig, paper=Listwise()),
        "comirec_dr": Entry(ComiRecDR, ComiRecDRConfig, paper=Listwise()),
        "comirec_sa": Entry(ComiRecSA, ComiRecSAConfig, paper=Listwise()),
        "youtube_dnn": Entry(YouTubeDNN, YouTubeDNNConfig, paper=Listwise()),
        "stamp": Entry(STAMP, STAMPConfig, paper=FullSoftmax()),
        "sine": Entry(SINE, SINEConfig, paper=Listwise()),
        "kuaishou_ebr": Entry(KuaishouEBR, KuaishouEBRConfig, paper=DivideAndConquer(), own=(DivideAndConquer,)),
    },
    "ranking": {
        "widedeep": Entry(WideDeep, WideDeepConfig),
        "deepfm": Entry(DeepFM, DeepFMConfig),
        "dcn": Entry(DCN, DCNConfig),
        "dcnv2": Entry(DCNV2, DCNV2Config),
        "afm": Entry(AFM, AFMConfig),
        "fibinet": Entry(FiBiNET, FiBiNETConfig),
        "deepffm": Entry(DeepFFM, DeepFFMConfig),
        "fat_deepffm": Entry(FATDeepFFM, FATDeepFFMConfig),
        "autoint": Entry(AutoInt, AutoIntConfig),
        "edcn": Entry(EDCN, EDCNConfig),
        "din_base": Entry(DINBase, DINBaseConfig),
        "din": Entry(DIN, DINConfig),
        "dien": Entry(DIEN, DIENConfig),
        "bst": Entry(BST, BSTConfig),
        "sim": Entry(SIM, SIMConfig),
        "eta": Entry(ETA, ETAConfig),
        "mimn": Entry(MIMN, MIMNConfig),
    },
    "multi_task": {
        "shared_bottom": Entry(SharedBottom, SharedBottomConfig),
        "moe": Entry(MoE, MoEConfig),
        "mmoe": Entry(MMoE, MMoEConfig),
        "cgc": Entry(CGC, CGCConfig),
        "ple": Entry(PLE, PLEConfig),
        "esmm": Entry(ESMM, ESMMConfig),
        "aitm": Entry(AITM, AITMConfig),
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
