"""Every registered model exports to ONNX and onnxruntime agrees with torch."""

import pytest
import torch

from rechub_core.models.registry import BASELINES, REGISTRY, build
from tests.unit.checks import check_onnx_parity, onnx_inputs
from tests.unit.test_models import SCHEMA, entries


@pytest.mark.parametrize("family,name,entry", entries(REGISTRY) + entries(BASELINES), ids=lambda x: str(x)[:20])
def test_onnx_parity(family, name, entry, tmp_path):
    torch.manual_seed(0)
    kwargs = {"num_tasks": 2} if family == "multi_task" else {}
    config = entry.config()
    model = build(family, config, SCHEMA, **kwargs).eval()
    if family == "matching":
        graphs = [(model.user_embedding, ["user"]), (model.item_embedding, ["item"])]
    else:  # exactly the features of the model's groups, as the export stage feeds it
        graphs = [(model, config.groups)]
    for i, (fn, groups) in enumerate(graphs):
        # the batch dimension is dynamic: 3 rows run too (smaller_shape=None: embeddings, per-task logits)
        path = tmp_path / f"{name}_{i}.onnx"
        check_onnx_parity(model, onnx_inputs(groups), path, fn=fn, output_name="out", smaller_shape=None)
