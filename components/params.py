"""Typed models of ``params.yaml``.

Unknown, missing or mistyped keys fail at load time with the key's path,
e.g. ``params.yaml: train_ranker.train.epochz: unknown key``. Each component
receives only its own section. Model hyper-parameters are the config
dataclasses of ``rechub_core``; a family's configs form a union discriminated
by ``name``, so choosing a model is choosing its config.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from components.errors import RechubError
from rechub_core.data.augment import AUGMENTATIONS, NoAugmentation
from rechub_core.data.synthetic import SyntheticConfig
from rechub_core.models.registry import REGISTRY, entry
from rechub_core.training.balancing import METHODS as BALANCING_METHODS
from rechub_core.training.objectives import MODEL_SPECIFIC, TWO_TOWER
from rechub_core.training.trainer import EarlyStopping, TrainConfig

_FORBID = ConfigDict(extra="forbid")
# the library's config dataclasses are plain dataclasses; make pydantic reject unknown keys in them too
_OBJECTIVES = (*TWO_TOWER, *MODEL_SPECIFIC)
for _cls in [SyntheticConfig, TrainConfig, EarlyStopping, *_OBJECTIVES, *BALANCING_METHODS, *AUGMENTATIONS,
             *(e.config for fam in REGISTRY.values() for e in fam.values())]:
    _cls.__pydantic_config__ = _FORBID


def _union(configs: tuple[type, ...]) -> Any:
    """Config dataclasses told apart by their ``name``."""
    if len(configs) == 1:
        return configs[0]
    return Annotated[Union[configs], Field(discriminator="name")]  # noqa: UP007


def _model_union(family: str) -> Any:
    return _union(tuple(e.config for e in REGISTRY[family].values()))


MatchingModel = _model_union("matching")
RecallObjective = _union(_OBJECTIVES)
RecallAugmentation = _union(AUGMENTATIONS)
RankingModel = _model_union("ranking")
MultiTaskModel = _model_union("multi_task")
LossBalancing = _union(BALANCING_METHODS)


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RankingSplit(Section):
    valid_fraction: float = Field(gt=0, lt=0.5)
    test_fraction: float = Field(gt=0, lt=0.5)


class LeaveOneOut(Section):
    name: Literal["leave_one_out"]


class TimeRatio(Section):
    name: Literal["time_ratio"]
    test_fraction: float = Field(gt=0, lt=1)


class MovieLensParams(Section):
    variant: Literal["ml-1m", "ml-100k"]  # ml-1m: ratings.dat users.dat movies.dat; ml-100k: u.data u.user u.item
    click_threshold: int = Field(ge=1, le=5)  # ranking rows: click = rating >= this


class SequenceFileParams(Section):
    file: str  # in raw_dir
    # pairs: "user item" per line, in time order (SASRec's data); lists: "user item item ..." (S3-Rec's)
    format: Literal["pairs", "lists"]


class CriteoParams(Section):
    file: str  # in raw_dir: label, 13 integer and 26 categorical fields per line, tab-separated
    min_count: int = Field(ge=1)  # a category seen fewer times in the training rows → the out-of-vocabulary id


class CensusParams(Section):
    train_file: str  # in raw_dir: census-income.data
    test_file: str  # census-income.test


class SessionParams(Section):
    dataset: Literal["yoochoose", "diginetica"]
    file: str  # in raw_dir: yoochoose-clicks.dat | train-item-views.csv
    test_days: int = Field(ge=1)  # the sessions of the last days are the test set (NARM: 1 for YOOCHOOSE, 7 for DIGINETICA)
    min_item_count: int = Field(ge=1)  # items seen fewer times are removed (5)
    # keep the sessions holding the most recent 1/fraction of the training prefixes (YOOCHOOSE 1/64, 1/4); 1: all
    fraction: int = Field(ge=1)


FeatureKind = Literal["categorical", "numeric"]


class GenericParams(Section):
    file: str  # in raw_dir: CSV with a header, or Parquet; one row per event
    user: str  # the column of user ids
    item: str  # the column of item ids
    time: str | None = None  # the column of event times (integers); none: the file's order
    labels: list[str] = []  # binary label columns (0/1): the ranking rows' labels, in this order
    values: list[str] = []  # real-valued label columns (regression tasks)
    user_features: dict[str, FeatureKind] = {}  # columns describing the user (each user's first row)
    item_features: dict[str, FeatureKind] = {}  # columns describing the item (each item's first row)
    context_features: dict[str, FeatureKind] = {}  # columns of the event itself
    # recall's interactions: every row (all) or the rows whose first label is 1 (positive)
    interactions: Literal["all", "positive"] = "all"


class IngestParams(Section):
    source: Literal["synthetic", "files", "movielens", "sequences", "criteo", "census", "sessions", "generic"]
    raw_dir: str
    synthetic: SyntheticConfig
    # each reader's own settings: the section of the source chosen must be present (README: Real datasets)
    movielens: MovieLensParams | None = None
    sequences: SequenceFileParams | None = None
    criteo: CriteoParams | None = None
    census: CensusParams | None = None
    sessions: SessionParams | None = None
    generic: GenericParams | None = None
    history_len: int = Field(ge=1, le=1000)
    long_history_len: int = Field(ge=1, le=100_000)
    ranking_split: RankingSplit
    # which interactions are recall's test rows: each user's last (leave_one_out) or all after a time cut
    recall_split: Annotated[Union[LeaveOneOut, TimeRatio], Field(discriminator="name")]  # noqa: UP007
    k_core: int = Field(ge=0)  # users and items with fewer interactions are dropped, repeatedly; 0: off
    # DuckDB's memory cap (e.g. 4GB); past it ingest spills to a scratch directory beside data/processed
    memory_limit: str = Field(pattern=r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$")

    @model_validator(mode="after")
    def _source_section(self):
        if self.source not in ("synthetic", "files") and getattr(self, self.source) is None:
            raise ValueError(f"source {self.source!r} reads its settings from ingest.{self.source}, which is missing "
                             "(README: Real datasets)")
        if self.source == "sessions" and (self.k_core > 0 or self.recall_split.name != "leave_one_out"):
            raise ValueError("source 'sessions' prepares and splits its sessions itself (ingest.sessions: test_days, "
                             "min_item_count, fraction): leave k_core at 0 and recall_split at leave_one_out")
        if self.source == "sequences" and self.recall_split.name == "time_ratio":
            raise ValueError("source 'sequences' has no times, only each user's order (ts: the position in the "
                             "sequence), so a time cut means nothing: use recall_split leave_one_out")
        return self
    # a malformed raw row: fail (name its file and line) or skip (count it in meta.json and the validation report)
    bad_rows: Literal["fail", "skip"] = "fail"


class NegativeSampleParams(Section):
    seed: int
    distribution: Literal["uniform", "popularity"]
    num_negatives: int = Field(ge=1)
    popularity_power: float = Field(ge=0)


class TrainRecallParams(Section):
    seed: int
    model: MatchingModel
    objective: RecallObjective
    train: TrainConfig
    augmentation: RecallAugmentation  # none | ticoserec: a contrastive loss on augmented histories

    @model_validator(mode="after")
    def _model_supports_objective(self):
        own = REGISTRY["matching"][self.model.name].own
        if isinstance(self.objective, MODEL_SPECIFIC) and not isinstance(self.objective, own):
            able = sorted(n for n, e in REGISTRY["matching"].items() if type(self.objective) in e.own)
            raise ValueError(
                f"objective {self.objective.name!r} is specific to {able}; model {self.model.name!r} trains with "
                f"{[c.__dataclass_fields__['name'].default for c in (*TWO_TOWER, *own)]}"
            )
        return self

    @model_validator(mode="after")
    def _objective_takes_augmentation(self):
        # the contrastive loss is added where batches hold histories: the two-tower and next-item trainers
        if not isinstance(self.augmentation, NoAugmentation) and self.objective.name in AUGMENTED_ELSEWHERE:
            raise ValueError(
                f"augmentation {self.augmentation.name!r} is not available with objective {self.objective.name!r} "
                f"({AUGMENTED_ELSEWHERE[self.objective.name]}); use a two-tower objective or next_item, "
                "or augmentation name: none"
            )
        return self


# objectives whose trainers have no batch of histories to augment
AUGMENTED_ELSEWHERE = {
    "session_parallel": "it feeds GRU4Rec one event at a time, not histories",
    "divide_and_conquer": "its trainer scores per-cluster task vectors and takes no auxiliary loss",
}


class BuildIndexParams(Section):
    kind: Literal["flat", "hnsw", "ivf"]
    hnsw_m: int = Field(ge=4)
    ef_construction: int = Field(ge=8)
    ef_search: int = Field(ge=8)
    ivf_nlist: int = Field(ge=1)
    ivf_nprobe: int = Field(ge=1)
    recall_k: int = Field(ge=1)


class TrainRankerParams(Section):
    seed: int
    label: str  # the binary label column the ranker predicts (click in the built-in data)
    model: RankingModel
    train: TrainConfig
    early_stopping: EarlyStopping
    baseline_train: TrainConfig  # the logistic-regression baseline, trained to convergence on its own settings


class TrainMTLParams(Section):
    seed: int
    model: MultiTaskModel
    # label columns of the impressions: binary (click, conversion) or real-valued (regression, e.g. log_dwell)
    tasks: list[str] = Field(min_length=1)
    balancing: LossBalancing
    train: TrainConfig
    early_stopping: EarlyStopping

    @model_validator(mode="after")
    def _tasks_fit(self):
        if len(set(self.tasks)) < len(self.tasks):
            raise ValueError(f"tasks: each task once, got {self.tasks}")
        weights = getattr(self.balancing, "weights", None)
        if weights is not None and len(weights) != len(self.tasks):
            raise ValueError(f"balancing.weights: one weight per task {self.tasks}, got {weights}")
        target = getattr(self.balancing, "target", None)
        if target is not None and target not in self.tasks:
            raise ValueError(f"balancing.target: {target!r} is not one of the tasks {self.tasks}")
        if getattr(entry("multi_task", self.model.name).model, "funnel", False) and len(self.tasks) < 2:
            raise ValueError(f"tasks: model {self.model.name!r} models a funnel and needs at least two tasks")
        return self


class FullRanking(Section):
    name: Literal["full"]


class SampledRanking(Section):
    name: Literal["sampled"]
    negatives: int = Field(ge=1)
    k: int = Field(ge=1)
    seed: int


class EvaluateParams(Section):
    top_k: int = Field(ge=1)
    protocol: Annotated[Union[FullRanking, SampledRanking], Field(discriminator="name")]  # noqa: UP007
    diversity: float = Field(ge=0)


class ExportParams(Section):
    parity_rows: int = Field(ge=1)
    tolerance: float = Field(gt=0)
    opset: int = Field(ge=13)


class Params(Section):
    ingest: IngestParams
    negative_sample: NegativeSampleParams
    train_recall: TrainRecallParams
    build_index: BuildIndexParams
    train_ranker: TrainRankerParams
    train_mtl: TrainMTLParams
    evaluate: EvaluateParams
    export: ExportParams


class ParamsError(RechubError):
    """A params file that does not match the typed models; the message names each bad key."""


_MESSAGES = {
    "extra_forbidden": "unknown key",
    "unexpected_keyword_argument": "unknown key",
    "missing": "missing key",
    "missing_argument": "missing key",
}
def _dataclasses_in(annotation: Any) -> list[type]:
    """The config dataclasses a field annotation admits (one, or a family's union)."""
    if is_dataclass(annotation):
        return [annotation]
    return [cls for arg in get_args(annotation) for cls in _dataclasses_in(arg)]


def _missing_dataclass_keys(raw: Any) -> list[str]:
    """Keys left out of sections held by library dataclasses, whose defaults would otherwise hide them.

    Derived from the ``Params`` models: every field of a section typed as a
    config dataclass (or a union of them, picked by the ``name`` the file gives).
    """
    missing = []
    for section, section_field in Params.model_fields.items():
        block = raw.get(section) if isinstance(raw, dict) else None
        if not isinstance(block, dict):
            continue
        for key, key_field in section_field.annotation.model_fields.items():
            value = block.get(key)
            candidates = _dataclasses_in(key_field.annotation)
            if not isinstance(value, dict) or not candidates:
                continue
            if len(candidates) > 1:  # a model family: the one whose name the file chose
                candidates = [c for c in candidates if c.__dataclass_fields__["name"].default == value.get("name")]
            for cls in candidates[:1]:
                missing += [f"{section}.{key}.{f.name}: missing key" for f in fields(cls) if f.name not in value]
    return missing


# the tags of discriminated unions: a family's model names under ``model``, objective names under ``objective``
_TAGS = {
    "model": {name for family in REGISTRY.values() for name in family},
    "objective": {c.__dataclass_fields__["name"].default for c in _OBJECTIVES},
    "protocol": {"full", "sampled"},
    "recall_split": {"leave_one_out", "time_ratio"},
    "augmentation": {c.__dataclass_fields__["name"].default for c in AUGMENTATIONS},
    "balancing": {c.__dataclass_fields__["name"].default for c in BALANCING_METHODS},
}


def _describe(error: dict) -> str:
    parts = [p for p in error["loc"] if not (isinstance(p, str) and p[0].isupper())]
    # a union puts the chosen config's name (its tag) after ``model`` / ``objective``; params.yaml has no such key
    parts = [p for i, p in enumerate(parts) if not (i and p in _TAGS.get(parts[i - 1], ()))]
    if error["type"] == "union_tag_invalid":  # a model name that is not registered
        ctx = error["ctx"]
        parts.append(ctx["discriminator"].strip("'"))
        error = {**error, "msg": f"Input should be one of {ctx['expected_tags']}", "input": ctx["tag"]}
    loc = ".".join(str(p) for p in parts)
    msg = _MESSAGES.get(error["type"], error["msg"])
    if error["type"] not in _MESSAGES and error["type"] != "value_error" and "input" in error:
        msg += f" (got {error['input']!r})"
    return f"{loc or '<root>'}: {msg}"


def parse(raw: Any, source: str = "params") -> Params:
    lines = [f"{source}: {m}" for m in _missing_dataclass_keys(raw)]
    try:
        params = Params.model_validate(raw)
    except ValidationError as exc:
        lines += [f"{source}: {_describe(e)}" for e in exc.errors()]
    if lines:
        raise ParamsError("\n".join(lines))
    return params


def load(path: str | Path) -> Params:
    """Read and validate a params file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ParamsError(f"{path}: no such params file") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {exc}") from None
    return parse(raw, str(path))


def section_dict(section: BaseModel | Any) -> dict:
    """A JSON-ready dict of a section (or config dataclass)."""
    return TypeAdapter(type(section)).dump_python(section, mode="json")


def params_hash(sections: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of the given sections."""
    text = json.dumps(sections, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
