"""ONNX export of models (or one of their towers) and the onnxruntime parity check.

A model takes a dict of named tensors; the exported graph takes the same
tensors as named inputs, batch dimension dynamic.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

Batch = dict[str, torch.Tensor]


class _NamedInputs(nn.Module):
    """Calls ``fn(dict(zip(names, tensors)))``; ``owner`` holds the weights ``fn`` uses."""

    def __init__(self, owner: nn.Module, fn: Callable[[Batch], torch.Tensor], names: list[str]):
        super().__init__()
        self.owner = owner
        self.fn = fn
        self.names = names

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self.fn(dict(zip(self.names, tensors)))


def export_onnx(
    owner: nn.Module,
    fn: Callable[[Batch], torch.Tensor],
    example: Batch,
    path: Path,
    *,
    output_name: str,
    opset: int = 18,
) -> None:
    """Export ``fn`` (``owner`` or one of its methods) with ``example``'s keys as input names."""
    names = list(example)
    wrapper = _NamedInputs(owner, fn, names).eval()
    dynamic = {name: {0: "batch"} for name in [*names, output_name]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter announces its deprecation
        torch.onnx.export(
            wrapper,
            tuple(example[n] for n in names),
            str(path),
            input_names=names,
            output_names=[output_name],
            dynamic_axes=dynamic,
            opset_version=opset,
            dynamo=False,
        )


def onnx_outputs(path: Path, inputs: Batch) -> np.ndarray:
    """Run the exported graph in onnxruntime (CPU) on ``inputs``."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {i.name: inputs[i.name].numpy() for i in session.get_inputs()}
    return session.run(None, feeds)[0]


@torch.no_grad()
def parity(path: Path, fn: Callable[[Batch], torch.Tensor], inputs: Batch) -> float:
    """Largest absolute difference between torch's and onnxruntime's outputs on ``inputs``."""
    expected = fn(inputs).numpy()
    actual = onnx_outputs(path, inputs)
    if expected.shape != actual.shape:
        raise ValueError(f"{path}: onnxruntime output shape {actual.shape} != torch {expected.shape}")
    return float(np.max(np.abs(expected - actual))) if expected.size else 0.0
