"""Checks shared by the model tests: the loss reaches every parameter, ONNX parity, padding never leaks.

On the tiny ``SCHEMA`` and ``batch()`` of ``tests.unit.test_models``. Registered for pytest's assertion
rewriting in ``tests/unit/__init__.py``, so a failing check reports its values as a test's own assert does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from rechub_core.export import export_onnx, onnx_outputs, parity
from tests.unit.test_models import SCHEMA, B, batch

Batch = dict[str, torch.Tensor]

# --- gradients ---------------------------------------------------------------------------------


def check_loss_reaches_every_parameter(model, b: Batch, logits: torch.Tensor, auxiliary=None) -> None:
    """The click BCE of ``logits`` (plus ``auxiliary``) is finite and its gradient reaches every parameter
    of ``model``: present, finite and non-zero."""
    loss = F.binary_cross_entropy_with_logits(logits, b["click"].float())
    if auxiliary is not None:
        loss = loss + auxiliary
    assert torch.isfinite(loss)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def check_logits_and_gradients(model, b: Batch | None = None, auxiliary=None) -> torch.Tensor:
    """``model(b)`` (default ``batch()``) gives ``(B,)`` logits whose loss reaches every parameter; the logits."""
    b = batch() if b is None else b
    logits = model(b)
    assert logits.shape == (B,)
    check_loss_reaches_every_parameter(model, b, logits, auxiliary)
    return logits


def check_auxiliary_loss_scales(make, weight: float, b: Batch):
    """``make(w)`` builds a model whose auxiliary loss has weight ``w``: with the same parameters, in eval, weight
    ``weight`` gives ``weight`` times the loss of weight 1. The model of weight 1."""
    one, other = make(1.0).eval(), make(weight).eval()
    other.load_state_dict(one.state_dict())
    torch.testing.assert_close(other.logits_and_auxiliary_loss(b)[1], weight * one.logits_and_auxiliary_loss(b)[1])
    return one


# --- ONNX --------------------------------------------------------------------------------------


def onnx_inputs(groups=("user", "item"), b: Batch | None = None) -> Batch:
    """The columns of ``groups``' features in ``b`` (default ``batch(seed=3)``), as the export stage feeds them."""
    b = batch(seed=3) if b is None else b
    return {f.name: b[f.name] for f in SCHEMA.features(*groups)}


def check_onnx_parity(
    model,
    inputs: Batch,
    path: Path,
    *,
    fn=None,
    output_name: str = "logits",
    smaller: Batch | None = None,
    smaller_shape: tuple[int, ...] | None = (3,),
) -> tuple[Batch, np.ndarray]:
    """Export ``fn`` (default ``model``) to ``path``: onnxruntime agrees with torch on ``inputs`` to 1e-5, and the
    batch dimension is dynamic: a 3-row batch, ``smaller`` (default the first 3 rows of ``inputs``), runs too and
    gives ``smaller_shape`` (``None``: any shape of 3 rows). That batch and onnxruntime's outputs on it."""
    fn = model if fn is None else fn
    export_onnx(model, fn, inputs, path, output_name=output_name)
    assert parity(path, fn, inputs) < 1e-5
    smaller = {k: v[:3] for k, v in inputs.items()} if smaller is None else smaller
    out = onnx_outputs(path, smaller)
    if smaller_shape is None:
        assert out.shape[0] == 3
    else:
        assert out.shape == smaller_shape
    return smaller, out


# --- padding -----------------------------------------------------------------------------------


@torch.no_grad()
def shift_padding_rows(embedding, *names: str, by: float = 5.0) -> None:
    """Move the row of id 0 (the padding) of each of ``names``' tables in the ``FeatureEmbedding`` by ``by``."""
    for name in names:
        embedding.table.weight[embedding.offsets[name]] += by


def history_padding_changed(b: Batch) -> Batch:
    """``b`` with other categories (3) and times (9) at the history's padding positions."""
    pad = b["hist"] == 0
    return dict(b, hist_category=torch.where(pad, 3, b["hist_category"]), hist_dt=torch.where(pad, 9, b["hist_dt"]))


def real_history_changed(b: Batch) -> Batch:
    """``b`` with another item at every real position of the history; its padding stays."""
    return dict(b, hist=torch.where(b["hist"] > 0, 1 + b["hist"] % 20, 0))
