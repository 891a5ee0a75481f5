"""Export the serving bundle: ONNX models, the index, vocabularies and a manifest.

Exports the recall model's user and item towers, the ranker and the
multi-task model to ONNX; runs each in onnxruntime on held-out rows and
compares with torch. The bundle is written whole or not at all; parity worse
than ``tolerance`` fails the stage (after recording ``metrics``).

``bundle/``: ``user_tower.onnx`` ``item_tower.onnx`` ``ranker.onnx``
``mtl.onnx`` ``index.faiss`` ``item_ids.npy`` ``vocab/`` ``schema.json``
(multi-interest user towers output ``(batch, interests, dim)``; per-cluster
models add ``interest_groups.npy`` and ``item_groups.npy``)
``manifest.json`` (package versions, inputs and outputs of every model,
metrics, a hash of the params behind every artefact). A part the source has
nothing for (recall for Criteo, ranking for sequence files) is left out, and
``manifest.json``'s ``skipped`` says why.
"""

from __future__ import annotations

import shutil
from importlib.metadata import version
from pathlib import Path

import torch

from components import skip
from components.artifacts import load_model, load_ranking, load_schema, load_table
from components.errors import CheckFailed
from components.io import atomic_dir, read_json, write_json
from components.params import ExportParams, params_hash, section_dict
from rechub_core.data.tables import Batch, TensorTable
from rechub_core.export import export_onnx, parity
from rechub_core.features import Schema

PACKAGES = ("rechub", "torch", "onnx", "onnxruntime", "faiss-cpu", "numpy", "pyarrow", "duckdb")


def _inputs(table: TensorTable, schema: Schema, groups: list[str], rows: int) -> Batch:
    names = [f.name for f in schema.features(*groups)]
    batch = table.take(slice(0, rows))  # derived columns (behaviour windows) are cut for these rows only
    return {n: batch[n] for n in names}


def _signature(inputs: Batch, output: str, shape: list[str]) -> dict:
    return {
        "inputs": {n: {"dtype": str(t.dtype).removeprefix("torch."), "shape": ["batch", *t.shape[1:]]} for n, t in inputs.items()},
        "output": {"name": output, "shape": shape},
    }


def run(
    params: ExportParams,
    *,
    processed: Path,
    recall_model: Path,
    index_dir: Path,
    ranker_model: Path,
    mtl_model: Path,
    index_metrics: Path,
    recall_metrics: Path,
    ranking_metrics: Path,
    mtl_metrics: Path,
    bundle: Path,
    metrics: Path,
) -> dict[str, float]:
    schema = load_schema(processed)
    rows = params.parity_rows
    # a part whose stage was skipped (the source has nothing for it) is left out of the bundle, and says why
    skipped = {name: why for name, directory in (("recall", recall_model), ("ranking", ranker_model),
                                                 ("multi_task", mtl_model)) if (why := skip.skipped(directory))}
    graphs = []  # file, owner, function, inputs, output name, output shape
    multi = False
    if "recall" not in skipped:
        users = load_table(processed, "recall_test", schema)
        items = load_table(processed, "items", schema)
        recall, _ = load_model(recall_model)
        user_inputs = _inputs(users, schema, ["user"], rows)
        multi = recall.user_embedding(user_inputs).dim() == 3  # multi-interest: one vector per interest
        user_shape = ["batch", "interests", "dim"] if multi else ["batch", "dim"]
        graphs += [
            ("user_tower.onnx", recall, recall.user_embedding, user_inputs, "user_embedding", user_shape),
            ("item_tower.onnx", recall, recall.item_embedding, _inputs(items, schema, ["item"], rows), "item_embedding", ["batch", "dim"]),
        ]
    rankers = {}
    if "ranking" not in skipped:
        rankers["ranker.onnx"] = (*load_model(ranker_model), "logit")
    if "multi_task" not in skipped:
        rankers["mtl.onnx"] = (*load_model(mtl_model), "logits")
    if rankers:
        groups = sorted({g for _, meta, _ in rankers.values() for g in meta["config"]["groups"]})
        ranking_test = load_ranking(processed, "ranking_test", schema, groups)
        for filename, (model, meta, output) in rankers.items():
            shape = ["batch"] if output == "logit" else ["batch", len(meta["tasks"])]
            graphs.append((filename, model, model, _inputs(ranking_test, schema, meta["config"]["groups"], rows), output, shape))
    diffs: dict[str, float] = {}
    signatures: dict[str, dict] = {}
    with atomic_dir(bundle) as out:
        for filename, owner, fn, inputs, output, shape in graphs:
            export_onnx(owner, fn, inputs, out / filename, output_name=output, opset=params.opset)
            diffs[filename] = parity(out / filename, fn, inputs)
            signatures[filename] = _signature(inputs, output, shape)
        figures = {"max_abs_diff": max(diffs.values())}
        write_json(metrics, figures)
        if figures["max_abs_diff"] > params.tolerance:
            worst = max(diffs, key=diffs.get)
            raise CheckFailed(
                f"onnxruntime differs from torch by {diffs[worst]:.3g} in {worst} (tolerance {params.tolerance:g}); "
                "bundle not written"
            )
        sections = {"ingest": read_json(processed / "meta.json")["params"]}
        manifest = {"versions": {p: version(p) for p in PACKAGES}, "models": signatures}
        if "recall" not in skipped:
            shutil.copy(index_dir / "index.faiss", out / "index.faiss")
            shutil.copy(index_dir / "item_ids.npy", out / "item_ids.npy")
            retrieval = {"interests": "merged by score (an item once, at its best interest's score)" if multi else "single vector"}
            if (recall_model / "interest_groups.npy").exists():
                for name in ("interest_groups.npy", "item_groups.npy"):
                    shutil.copy(recall_model / name, out / name)
                retrieval = {
                    "interests": "interest k searches only the items whose group is interest_groups[k], then merged by score",
                    "interest_groups": "interest_groups.npy",
                    "item_groups": "item_groups.npy (aligned with item_ids.npy)",
                }
            sections["train_recall"] = read_json(recall_model / "params.json")
            sections["build_index"] = read_json(index_dir / "params.json")
            manifest["index"] = {"file": "index.faiss", "ids": "item_ids.npy", "kind": sections["build_index"]["kind"],
                                 **retrieval}
        if "ranking" not in skipped:
            sections["train_ranker"] = read_json(ranker_model / "params.json")
            manifest["models"]["ranker.onnx"]["label"] = rankers["ranker.onnx"][1]["label"]
        if "multi_task" not in skipped:
            mtl_meta = rankers["mtl.onnx"][1]
            tasks = mtl_meta["tasks"]
            sections["train_mtl"] = read_json(mtl_model / "params.json")
            manifest["models"]["mtl.onnx"].update({
                "tasks": list(tasks),  # column t of "logits" is task t
                # per task: a binary task's logit (apply a sigmoid) or a regression task's value
                "outputs": ["value" if t in mtl_meta.get("regression", ()) else "logit" for t in tasks],
            })
        shutil.copytree(processed / "vocab", out / "vocab")
        shutil.copy(processed / "schema.json", out / "schema.json")
        sections["export"] = section_dict(params)
        manifest["metrics"] = {
            "index": read_json(index_metrics),
            "recall": read_json(recall_metrics),
            "ranking": read_json(ranking_metrics),
            "mtl": read_json(mtl_metrics),
            "export": figures,
            "parity_by_model": diffs,
        }
        manifest.update({"skipped": skipped, "params": sections, "params_hash": params_hash(sections)})
        write_json(out / "manifest.json", manifest)
    return figures
