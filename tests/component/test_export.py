"""Every registered model exports to ONNX and onnxruntime agrees with torch."""

import pytest
import torch

from rechub_core.export import export_onnx, onnx_outputs, parity
from rechub_core.models.registry import BASELINES, REGISTRY, build
from tests.unit.test_models import SCHEMA, batch, entries


def _inputs(groups):
    b = batch(seed=3)
    return {f.name: b[f.name] for f in SCHEMA.features(*groups)}


@pytest.mark.parametrize("family,name,entry", entries(REGISTRY) + entries(BASELINES), ids=lambda x: str(x)[:20])
def test_onnx_parity(family, name, entry, tmp_path):
    torch.manual_seed(0)
    kwargs = {"num_tasks": 2} if family == "multi_task" else {}
    model = build(family, entry.config(), SCHEMA, **kwargs).eval()
    if family == "matching":
        graphs = [(model.user_embedding, ["user"]), (model.item_embedding, ["item"])]
    else:
        graphs = [(model, ["user", "item"])]
    for i, (fn, groups) in enumerate(graphs):
        inputs = _inputs(groups)
        path = tmp_path / f"{name}_{i}.onnx"
        export_onnx(model, fn, inputs, path, output_name="out")
        assert parity(path, fn, inputs) < 1e-5
        # the batch dimension is dynamic: a different batch size runs too
        half = {k: v[:3] for k, v in inputs.items()}
        assert onnx_outputs(path, half).shape[0] == 3
