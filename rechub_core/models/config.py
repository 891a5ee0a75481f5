"""Checks shared by model config dataclasses (run in ``__post_init__``, so params fail at load time)."""

from __future__ import annotations


def require_layers(**lists: list) -> None:
    """Each named list (layer sizes, feature groups) must be non-empty, with positive sizes."""
    for name, values in lists.items():
        if not values:
            raise ValueError(f"{name} must not be empty")
        if any(isinstance(v, int) and v < 1 for v in values):
            raise ValueError(f"{name} must hold positive sizes, got {values}")


def require_positive(**sizes: int) -> None:
    """Each named size (a dimension, a count) must be at least 1; the first that is not is named."""
    for name, value in sizes.items():
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")


def require_dropout(dropout: float) -> None:
    """A dropout rate must lie in [0, 1)."""
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")


def check_transformer(embed_dim: int, num_heads: int, num_blocks: int, dropout: float) -> None:
    """Sizes of a stack of Transformer blocks."""
    if embed_dim < 1 or num_heads < 1 or embed_dim % num_heads:
        raise ValueError(f"embed_dim ({embed_dim}) must be a positive multiple of num_heads ({num_heads})")
    require_positive(num_blocks=num_blocks)
    require_dropout(dropout)
