"""Train the recall (matching) model and embed the item corpus and the test users.

Writes into ``model_dir``: the model (``model.pt``, ``model.json``,
``schema.json``), ``item_embeddings.npy`` with ``item_ids.npy`` (row → item
id, every real item), ``user_embeddings.npy`` for the rows of
``recall_test.parquet`` (in order; ``(U, D)``, or ``(U, K, D)`` for
multi-interest models), and ``params.json``; for a model that retrieves per
cluster, ``interest_groups.npy`` (interest → group) and ``item_groups.npy``
(row of ``item_ids.npy`` → group); per-epoch figures go to ``plot``.
The objective (``train_recall.objective``) picks the trainer: a shared
two-tower objective, or a model's own (next-item, session-parallel,
divide-and-conquer). With ``train_recall.augmentation`` ``ticoserec`` (Dang et
al., "Uniform Sequence Better: Time Interval Aware Data Augmentation for
Sequential Recommendation", AAAI 2023; ``rechub_core.data.augment``), the
two-tower and next-item trainers add a contrastive loss between two
time-interval-aware augmentations of each row's history (``hist`` with its
times ``hist_ts``); its correlated items come from the users' training
sequences. A multi-interest user tower's vectors are averaged for it.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from components import skip
from components.artifacts import id_indexed, load_schema, load_table, reproducible, save_array, save_model
from components.errors import DataError
from components.io import atomic_dir, read_parquet, write_json
from components.params import TrainRecallParams, section_dict
from rechub_core.data.augment import NoAugmentation, SequenceContrast, correlated_items
from rechub_core.data.behaviors import HIST_TS
from rechub_core.data.sequences import last_of_user
from rechub_core.data.tables import TensorTable, arrow_to_tensors
from rechub_core.features import Schema
from rechub_core.models.matching.inputs import history_feature
from rechub_core.models.registry import build
from rechub_core.training.divide_and_conquer import fit_divide_and_conquer
from rechub_core.training.next_item import fit_next_item
from rechub_core.training.objectives import DivideAndConquer, NextItem, SessionParallel
from rechub_core.training.session_parallel import fit_session_parallel
from rechub_core.training.trainer import fit_two_tower, needs_sampled_negatives, predict


def latest_sequences(train: TensorTable, *, with_history: bool = False) -> TensorTable:
    """Each user's training sequence, ``seq (U, L+1)``: the history of their latest example plus its item.

    ``recall_train`` is in (user, time) order as ingest writes it, so a user's latest example is their last row.
    ``with_history`` adds that example's ``hist`` (``seq[:, :-1]``, the inputs) and ``hist_ts``.
    """
    users = train["user_id"].numpy()
    if (np.diff(users) < 0).any():
        raise DataError("recall_train.parquet is not ordered by user and time; rerun ingest")
    latest = torch.from_numpy(np.flatnonzero(last_of_user(users)))
    seq = torch.cat([train["hist"][latest], train["item_id"][latest].unsqueeze(1)], dim=1)  # (U, L+1)
    columns = {"seq": seq}
    if with_history:
        columns.update({"hist": train["hist"][latest], HIST_TS: train[HIST_TS][latest]})
    return TensorTable(columns)


def contrast(params: TrainRecallParams, schema: Schema, train: TensorTable, processed: Path) -> SequenceContrast | None:
    """The contrastive auxiliary loss ``train_recall.augmentation`` asks for; None for ``none``."""
    augmentation = params.augmentation
    if isinstance(augmentation, NoAugmentation):
        return None
    try:
        history = history_feature(schema, f"augmentation {augmentation.name!r}")
    except ValueError as exc:
        raise DataError(f"{processed / 'schema.json'}: {exc}") from None
    if HIST_TS not in train.columns:
        raise DataError(
            f"{processed / 'recall_train.parquet'}: no {HIST_TS!r} column (the history's times, which "
            f"augmentation {augmentation.name!r} reads); rerun ingest"
        )
    n_items = schema.feature("item_id").vocab_size
    correlated = correlated_items(latest_sequences(train)["seq"], n_items, augmentation.correlation_window)
    generator = torch.Generator().manual_seed(augmentation.seed)
    return SequenceContrast(augmentation, correlated, generator, history=history.name, times=HIST_TS)


def _sampled_negatives(samples: Path, train: TensorTable) -> None:
    """Add ``negative_sample``'s ``neg_items`` (B, N) column to ``train``, checking the rows line up."""
    negs = read_parquet(samples / "negatives.parquet")
    if negs.num_rows != len(train):
        raise DataError(
            f"{samples / 'negatives.parquet'}: {negs.num_rows} rows but recall_train has {len(train)}; "
            "rerun negative_sample"
        )
    num_neg = len(negs.column("neg_items")[0])
    train.columns["neg_items"] = arrow_to_tensors(negs, {"neg_items": num_neg})["neg_items"]


def train(
    params: TrainRecallParams, model, schema, train: TensorTable, items: TensorTable, samples: Path,
    auxiliary: SequenceContrast | None = None,
) -> list:
    """Fit ``model`` with the configured objective (plus ``auxiliary``); returns the per-epoch history."""
    objective, config = params.objective, params.train
    generator = torch.Generator().manual_seed(params.seed)
    desc = "train_recall"
    if isinstance(objective, NextItem):
        n_items = schema.feature("item_id").vocab_size
        sequences = latest_sequences(train, with_history=auxiliary is not None)
        return fit_next_item(model, sequences, n_items, config, generator=generator, auxiliary=auxiliary, desc=desc)
    if isinstance(objective, SessionParallel):
        return fit_session_parallel(
            model, train["user_id"], train["item_id"], objective, config, generator=generator, desc=desc
        )
    if isinstance(objective, DivideAndConquer):
        return fit_divide_and_conquer(model, train, items, objective, config, generator=generator, desc=desc)
    logq = read_parquet(samples / "logq.parquet")
    # log of an item's expected count among a batch's positives (B q) and among a row's N sampled negatives
    item_logq = torch.from_numpy(logq.column("train_logq").to_numpy()) + math.log(config.batch_size)
    negatives = negative_logq = None
    if needs_sampled_negatives(objective):
        _sampled_negatives(samples, train)
        negatives = "neg_items"
        num_neg = train["neg_items"].shape[1]
        negative_logq = torch.from_numpy(logq.column("sampler_logq").to_numpy()) + math.log(num_neg)
    return fit_two_tower(
        model, train, items, config, objective=objective, generator=generator,
        item_logq=item_logq, negatives=negatives, negative_logq=negative_logq, auxiliary=auxiliary, desc=desc,
    )


def run(params: TrainRecallParams, *, processed: Path, samples: Path, model_dir: Path, plot: Path) -> dict:
    if (why := skip.reason(processed, "recall")) is not None:
        return skip.record("train_recall", why, model_dir, plots=(plot,))
    schema = load_schema(processed)
    train_table = load_table(processed, "recall_train", schema)
    items = id_indexed(load_table(processed, "items", schema), "item_id")
    auxiliary = contrast(params, schema, train_table, processed)
    with reproducible(params.seed):
        model = build("matching", params.model, schema)
        history = train(params, model, schema, train_table, items, samples, auxiliary)
        corpus = TensorTable({k: v[1:] for k, v in items.columns.items()})  # every real item, id 1..N-1
        item_vectors = predict(model.item_embedding, corpus).astype(np.float32)
        test_users = load_table(processed, "recall_test", schema)
        # small batches: a multi-interest tower runs one sequence per interest
        user_vectors = predict(model.user_embedding, test_users, batch_size=512).astype(np.float32)
    groups = {}
    if hasattr(model, "interest_groups"):  # per-cluster retrieval: interest k searches the items of its group
        groups = {"interest_groups.npy": model.interest_groups().numpy(), "item_groups.npy": corpus[model.group_feature].numpy()}
    with atomic_dir(model_dir) as out:
        save_model(out, "matching", model, params.model, schema)
        save_array(out / "item_embeddings.npy", item_vectors)
        save_array(out / "item_ids.npy", corpus["item_id"].numpy())
        save_array(out / "user_embeddings.npy", user_vectors)
        for name, array in groups.items():
            save_array(out / name, array)
        write_json(out / "params.json", section_dict(params))
    write_json(plot, history)
    return {"history": history}
