"""rechub's side of the benchmark: train one model on the benchmark data, write timings and predictions.

    python -m benchmarks.ours --model deepfm --data DIR --out OUT --config JSON [--stream]

The same command line and outputs as ``benchmarks/peers/torch_rechub_runner.py``:
``OUT/result.json`` (``prep_s``, ``train_s``, ``train_samples``,
``peak_rss_mb``, ``notes``) and the predictions the driver scores
(``scores.npy``, or ``user_vectors.npy`` + ``item_vectors.npy``). Preparation
counts everything from the Parquet files to training-ready tensors; reading
the files into memory is not counted (as for the peer).
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch

from rechub_core.data.sequences import leave_last_out, next_item_examples, user_sequences
from rechub_core.data.tables import ParquetTable, TensorTable, arrow_to_tensors
from rechub_core.features import DenseFeature, Schema, SequenceFeature, SparseFeature
from rechub_core.models.registry import build, entry
from rechub_core.training.next_item import fit_next_item
from rechub_core.training.objectives import InBatch
from rechub_core.training.trainer import TrainConfig, fit_pointwise, fit_two_tower, predict

RANKING = {"deepfm", "dcnv2"}
MATCHING = {"dssm", "sasrec"}


def _train_config(config: dict) -> TrainConfig:
    return TrainConfig(
        epochs=config["epochs"],
        batch_size=config["batch_size"],
        learning_rate=config["learning_rate"],
        weight_decay=config.get("weight_decay", 0.0),
    )


def _model_config(family: str, name: str, config: dict):
    cls = entry(family, name).config
    known = cls.__dataclass_fields__
    return cls(**{k: v for k, v in config.items() if k in known and k != "name"})


def ctr_schema(meta: dict) -> Schema:
    features = tuple(SparseFeature(n, v) for n, v in meta["sparse"].items()) + tuple(DenseFeature(n) for n in meta["dense"])
    return Schema({"user": features, "item": ()}, labels=tuple(meta["labels"]))


def run_ctr(name: str, data: Path, out: Path, config: dict, stream: bool) -> dict:
    meta = json.loads((data / "ctr_meta.json").read_text())
    schema = ctr_schema(meta)
    family = "multi_task" if name == "mmoe" else "ranking"
    labels = meta["labels"] if family == "multi_task" else meta["labels"][:1]
    columns = [*meta["dense"], *meta["sparse"], *labels]
    if stream:
        start = time.perf_counter()
        train = ParquetTable(data / "ctr_train.parquet", columns)
        prep = time.perf_counter() - start
    else:
        arrow = pq.read_table(data / "ctr_train.parquet", columns=columns)
        start = time.perf_counter()
        train = arrow_to_tensors(arrow)
        prep = time.perf_counter() - start
        del arrow
    test = arrow_to_tensors(pq.read_table(data / "ctr_test.parquet", columns=columns))
    torch.manual_seed(0)
    kwargs = {"num_tasks": len(labels)} if family == "multi_task" else {}
    model = build(family, _model_config(family, name, config), schema, **kwargs)
    train_config = _train_config(config)
    start = time.perf_counter()
    fit_pointwise(model, train, labels, train_config, generator=torch.Generator().manual_seed(0), desc=name)
    train_s = time.perf_counter() - start
    np.save(out / "scores.npy", predict(model, test).astype(np.float32))
    return {"prep_s": prep, "train_s": train_s, "train_samples": len(train) * train_config.epochs}


def run_recall(name: str, data: Path, out: Path, config: dict) -> dict:
    meta = json.loads((data / "recall_meta.json").read_text())
    log = pq.read_table(data / "recall_interactions.parquet", columns=["user_id", "item_id"])
    user, item = log.column("user_id").to_numpy(), log.column("item_id").to_numpy()
    max_len, n_items = meta["max_len"], meta["n_items"] + 1
    schema = Schema(
        {
            "user": (SparseFeature("user_id", meta["n_users"] + 1), SequenceFeature("hist", n_items, max_len, shares="item_id")),
            "item": (SparseFeature("item_id", n_items),),
        }
    )
    torch.manual_seed(0)
    model = build("matching", _model_config("matching", name, config), schema)
    train_config = _train_config(config)
    generator = torch.Generator().manual_seed(0)

    start = time.perf_counter()
    keep = leave_last_out(user)
    user, item = user[keep], item[keep]
    if name == "sasrec":
        seqs = user_sequences(user, item, max_len + 1)
        train = TensorTable({"seq": torch.from_numpy(seqs["seq"])})
    else:
        train = TensorTable({k: torch.from_numpy(v) for k, v in next_item_examples(user, item, max_len).items()})
        counts = np.bincount(train["item_id"].numpy(), minlength=n_items).astype(np.float64)
        with np.errstate(divide="ignore"):
            item_logq = torch.from_numpy(np.log(counts / counts.sum()) + math.log(train_config.batch_size)).float()
    prep = time.perf_counter() - start

    start = time.perf_counter()
    if name == "sasrec":
        fit_next_item(model, train, n_items, train_config, generator=generator, desc=name)
    else:
        items = TensorTable({"item_id": torch.arange(n_items)})
        fit_two_tower(
            model, train, items, train_config, objective=InBatch(temperature=config["temperature"]),
            generator=generator, item_logq=item_logq, desc=name,
        )
    train_s = time.perf_counter() - start

    histories = user_sequences(user, item, max_len)  # every user's training history
    queries = TensorTable({"user_id": torch.from_numpy(histories["user_id"]), "hist": torch.from_numpy(histories["seq"])})
    vectors = predict(model.user_embedding, queries)
    user_vectors = np.zeros((meta["n_users"], vectors.shape[-1]), np.float32)
    user_vectors[histories["user_id"] - 1] = vectors
    np.save(out / "user_vectors.npy", user_vectors)
    np.save(out / "item_vectors.npy", predict(model.item_embedding, TensorTable({"item_id": torch.arange(1, n_items)})))
    return {"prep_s": prep, "train_s": train_s, "train_samples": len(train) * train_config.epochs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, choices=sorted(RANKING | MATCHING | {"mmoe"}))
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--config", required=True, help="JSON hyper-parameters")
    parser.add_argument("--stream", action="store_true", help="stream training rows from Parquet row groups")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    config = json.loads(args.config)
    if args.model in MATCHING:
        result = run_recall(args.model, args.data, args.out, config)
    else:
        result = run_ctr(args.model, args.data, args.out, config, args.stream)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["notes"] = "streamed from Parquet" if args.stream else ""
    (args.out / "result.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
