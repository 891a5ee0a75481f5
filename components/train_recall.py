"""Train the recall (matching) model and embed the item corpus and the test users.

Writes into ``model_dir``: the model (``model.pt``, ``model.json``,
``schema.json``), ``item_embeddings.npy`` with ``item_ids.npy`` (row → item
id, every real item), ``user_embeddings.npy`` for the rows of
``recall_test.parquet`` (in order), and ``params.json``; per-epoch figures go
to ``plot``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from components.artifacts import id_indexed, load_schema, load_table, reproducible, save_array, save_model
from components.errors import DataError
from components.io import atomic_dir, read_parquet, write_json
from components.params import TrainRecallParams, section_dict
from rechub_core.data.sequences import last_of_user
from rechub_core.data.tables import TensorTable, arrow_to_tensors
from rechub_core.models.registry import build, entry
from rechub_core.training.next_item import fit_next_item
from rechub_core.training.trainer import fit_two_tower, predict


def latest_sequences(train: TensorTable) -> TensorTable:
    """Each user's training sequence, ``seq (U, L+1)``: the history of their latest example plus its item.

    ``recall_train`` is in (user, time) order as ingest writes it, so a user's latest example is their last row.
    """
    users = train["user_id"].numpy()
    if (np.diff(users) < 0).any():
        raise DataError("recall_train.parquet is not ordered by user and time; rerun ingest")
    latest = torch.from_numpy(np.flatnonzero(last_of_user(users)))
    seq = torch.cat([train["hist"][latest], train["item_id"][latest].unsqueeze(1)], dim=1)  # (U, L+1)
    return TensorTable({"seq": seq})


def run(params: TrainRecallParams, *, processed: Path, samples: Path, model_dir: Path, plot: Path) -> dict:
    schema = load_schema(processed)
    train = load_table(processed, "recall_train", schema)
    items = id_indexed(load_table(processed, "items", schema), "item_id")
    negatives_col = None
    negative_logq = item_logq = None
    logq = read_parquet(samples / "logq.parquet")
    batch = params.train.batch_size
    if params.logq_correction:
        # expected count of an item among a batch's positives: B * q
        item_logq = torch.from_numpy(logq.column("train_logq").to_numpy()) + math.log(batch)
    if params.loss == "mixed":
        negs = read_parquet(samples / "negatives.parquet")
        if negs.num_rows != len(train):
            raise DataError(
                f"{samples / 'negatives.parquet'}: {negs.num_rows} rows but recall_train has {len(train)}; "
                "rerun negative_sample"
            )
        num_neg = len(negs.column("neg_items")[0])
        train.columns["neg_items"] = arrow_to_tensors(negs, {"neg_items": num_neg})["neg_items"]
        negatives_col = "neg_items"
        if params.logq_correction:
            negative_logq = torch.from_numpy(logq.column("sampler_logq").to_numpy()) + math.log(num_neg)

    generator = torch.Generator().manual_seed(params.seed)
    with reproducible(params.seed):
        model = build("matching", params.model, schema)
        if entry("matching", params.model.name).objective == "next_item":
            n_items = schema.feature("item_id").vocab_size
            history = fit_next_item(model, latest_sequences(train), n_items, params.train, generator=generator, desc="train_recall")
        else:
            history = fit_two_tower(
                model,
                train,
                items,
                params.train,
                generator=generator,
                temperature=params.temperature,
                item_logq=item_logq,
                negatives=negatives_col,
                negative_logq=negative_logq,
                desc="train_recall",
            )
        corpus = TensorTable({k: v[1:] for k, v in items.columns.items()})  # every real item, id 1..N-1
        item_vectors = predict(model.item_embedding, corpus).astype(np.float32)
        user_vectors = predict(model.user_embedding, load_table(processed, "recall_test", schema)).astype(np.float32)
    with atomic_dir(model_dir) as out:
        save_model(out, "matching", model, params.model, schema)
        save_array(out / "item_embeddings.npy", item_vectors)
        save_array(out / "item_ids.npy", corpus["item_id"].numpy())
        save_array(out / "user_embeddings.npy", user_vectors)
        write_json(out / "params.json", section_dict(params))
    write_json(plot, history)
    return {"history": history}
