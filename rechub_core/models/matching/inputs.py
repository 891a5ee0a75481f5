"""The inputs sequence-reading matching models take from the schema."""

from __future__ import annotations

from rechub_core.features import Schema, SequenceFeature, SparseFeature


def history_feature(schema: Schema, model: str = "a sequence model") -> SequenceFeature:
    """The user group's item history: the ``SequenceFeature`` that shares ``item_id``."""
    found = [f for f in schema.groups.get("user", ()) if isinstance(f, SequenceFeature) and f.shares == "item_id"]
    if len(found) != 1:
        raise ValueError(
            f"{model} needs exactly one sequence feature with shares='item_id' (the user's item history) "
            "in the schema's 'user' group, "
            f"found {[f.name for f in found]}"
        )
    return found[0]


def item_and_history(schema: Schema, model: str) -> tuple[SparseFeature, SequenceFeature]:
    """``item_id`` (which must be sparse) and the user's item history; ``model`` names the caller in errors."""
    items = schema.feature("item_id")
    if not isinstance(items, SparseFeature):
        raise ValueError(f"{model} needs 'item_id' to be a sparse feature, got {items}")
    return items, history_feature(schema, model)
