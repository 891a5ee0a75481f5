"""Checks shared by model config dataclasses (run in ``__post_init__``, so params fail at load time)."""

from __future__ import annotations


def require_layers(**lists: list) -> None:
    """Each named list (layer sizes, feature groups) must be non-empty, with positive sizes."""
    for name, values in lists.items():
        if not values:
            raise ValueError(f"{name} must not be empty")
        if any(isinstance(v, int) and v < 1 for v in values):
            raise ValueError(f"{name} must hold positive sizes, got {values}")
