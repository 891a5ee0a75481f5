"""Feature schema: what a model sees, as pure data.

A ``Schema`` is written by ingest (``schema.json``) and read by every step that
builds a model, a validation suite or an export signature. Ids are contiguous
integers; id 0 is reserved (padding in sequences, unknown for sparse features).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Literal


@dataclass(frozen=True)
class SparseFeature:
    """A categorical column of ids in ``[0, vocab_size)``."""

    name: str
    vocab_size: int
    kind: Literal["sparse"] = "sparse"


@dataclass(frozen=True)
class DenseFeature:
    """A float column (already normalised by ingest)."""

    name: str
    kind: Literal["dense"] = "dense"


@dataclass(frozen=True)
class SequenceFeature:
    """A left-padded ``(B, max_len)`` id column; 0 is padding.

    ``shares`` names a sparse feature whose embedding table it uses (a history
    of items shares the ``item_id`` table), so both live in one vocabulary.
    """

    name: str
    vocab_size: int
    max_len: int
    shares: str | None = None
    kind: Literal["sequence"] = "sequence"


Feature = SparseFeature | DenseFeature | SequenceFeature
# the feature groups a model may read (ingest writes them; ranking rows derive "behavior" and "long" when
# loaded, see rechub_core.data.behaviors); "negatives" (DIEN's negative next items) is read in training only
# "context": features of the labelled row itself (e.g. Criteo's fields, a census record), of no user or item
Group = Literal["user", "item", "context", "behavior", "long"]
_KINDS = {"sparse": SparseFeature, "dense": DenseFeature, "sequence": SequenceFeature}


@dataclass(frozen=True)
class Schema:
    """Named groups of features (e.g. ``user``, ``item``) and the label columns: ``labels`` are
    binary (with ``funnel``, in funnel order: a later one is 1 only where an earlier one is, as a
    conversion only follows a click), ``values`` real-valued (regression targets)."""

    groups: dict[str, tuple[Feature, ...]] = field(default_factory=dict)
    labels: tuple[str, ...] = ()
    values: tuple[str, ...] = ()
    funnel: bool = False

    def features(self, *groups: str) -> tuple[Feature, ...]:
        """The features of the named groups, in order, without repeats."""
        missing = [g for g in groups if g not in self.groups]
        if missing:
            raise KeyError(f"schema has no feature group(s) {missing}; it has {sorted(self.groups)}")
        seen: dict[str, Feature] = {}
        for g in groups:
            for f in self.groups[g]:
                seen.setdefault(f.name, f)
        return tuple(seen.values())

    def feature(self, name: str) -> Feature:
        for feats in self.groups.values():
            for f in feats:
                if f.name == name:
                    return f
        raise KeyError(f"schema has no feature {name!r}")

    def to_json(self) -> str:
        groups = {g: [asdict(f) for f in fs] for g, fs in self.groups.items()}
        return json.dumps({"groups": groups, "labels": list(self.labels), "values": list(self.values),
                           "funnel": self.funnel}, indent=2)

    @classmethod
    def from_json(cls, text: str) -> Schema:
        raw = json.loads(text)
        groups = {g: tuple(_KINDS[f.pop("kind")](**f) for f in fs) for g, fs in raw["groups"].items()}
        return cls(groups, tuple(raw["labels"]), tuple(raw.get("values", ())), bool(raw.get("funnel", False)))

    def sequence_lengths(self) -> dict[str, int]:
        """``{name: max_len}`` of every sequence feature, for padding lists into tensors."""
        return {f.name: f.max_len for fs in self.groups.values() for f in fs if isinstance(f, SequenceFeature)}


def sparse(features: tuple[Feature, ...]) -> tuple[SparseFeature, ...]:
    return tuple(f for f in features if isinstance(f, SparseFeature))


def dense(features: tuple[Feature, ...]) -> tuple[DenseFeature, ...]:
    return tuple(f for f in features if isinstance(f, DenseFeature))


def sequences(features: tuple[Feature, ...]) -> tuple[SequenceFeature, ...]:
    return tuple(f for f in features if isinstance(f, SequenceFeature))
