"""params.yaml's ``train_recall.augmentation`` block: off by default, TiCoSeRec's keys validated with their paths.

TiCoSeRec: Dang et al., "Uniform Sequence Better: Time Interval Aware Data Augmentation for Sequential
Recommendation", AAAI 2023.
"""

from dataclasses import asdict

import pytest
import yaml

from components.params import ParamsError, parse
from rechub_core.data.augment import NoAugmentation, TiCoSeRec
from rechub_core.models.registry import REGISTRY
from tests.conftest import ROOT


def raw(**augmentation) -> dict:
    p = yaml.safe_load((ROOT / "params.yaml").read_text())
    if augmentation:
        p["train_recall"]["augmentation"] = augmentation
    return p


def ticoserec(**changes) -> dict:
    return {**asdict(TiCoSeRec(seed=3)), **changes}


def test_repository_params_turn_augmentation_off():
    assert parse(raw()).train_recall.augmentation == NoAugmentation()


def test_ticoserec_loads_with_every_key():
    params = parse(raw(**ticoserec(operators=["crop", "insert"], mask_mode="maximum")))
    assert params.train_recall.augmentation == TiCoSeRec(operators=["crop", "insert"], mask_mode="maximum", seed=3)


def test_next_item_takes_augmentation():
    p = raw(**ticoserec())
    p["train_recall"]["model"] = {"name": "sasrec", "embed_dim": 8, "num_blocks": 1, "num_heads": 1, "dropout": 0.0}
    p["train_recall"]["objective"] = {"name": "next_item"}
    assert parse(p).train_recall.augmentation.name == "ticoserec"


def _fails(p: dict, message: str) -> None:
    with pytest.raises(ParamsError) as err:
        parse(p, "params.yaml")
    assert f"params.yaml: {message}" in str(err.value), str(err.value)


@pytest.mark.parametrize(
    "augmentation,message",
    [
        ({"name": "cl4srec"}, "train_recall.augmentation.name: Input should be one of"),
        ({"name": "none", "weight": 0.1}, "train_recall.augmentation.weight: unknown key"),
        ({k: v for k, v in ticoserec().items() if k != "weight"}, "train_recall.augmentation.weight: missing key"),
        (ticoserec(operators=["crop", "shuffle"]), "train_recall.augmentation.operators.1: Input should be 'crop', 'mask', 'reorder', 'substitute' or 'insert'"),
        (ticoserec(mask_mode="largest"), "train_recall.augmentation.mask_mode: Input should be 'random', 'maximum' or 'minimum'"),
        (ticoserec(operators=[]), "train_recall.augmentation: Value error, operators must name at least one operator"),
        (ticoserec(operators=["mask", "mask"]), "train_recall.augmentation: Value error, operators lists an operator twice"),
        (ticoserec(crop_ratio=0), "train_recall.augmentation: Value error, crop_ratio must be in (0, 1], got 0"),
        (ticoserec(temperature=0), "train_recall.augmentation: Value error, temperature must be positive"),
        (ticoserec(weight="high"), "train_recall.augmentation.weight: Input should be a valid number"),
    ],
)
def test_bad_augmentation_names_the_key(augmentation, message):
    _fails(raw(**augmentation), message)


@pytest.mark.parametrize("objective", [{"name": "session_parallel"}, {"name": "divide_and_conquer"}])
def test_objectives_without_history_batches_reject_augmentation(objective):
    p = raw(**ticoserec())
    model = {"session_parallel": "gru4rec", "divide_and_conquer": "kuaishou_ebr"}[objective["name"]]
    p["train_recall"]["model"] = asdict(REGISTRY["matching"][model].config())
    p["train_recall"]["objective"] = asdict(REGISTRY["matching"][model].paper)
    _fails(p, f"train_recall: Value error, augmentation 'ticoserec' is not available with objective {objective['name']!r}")
