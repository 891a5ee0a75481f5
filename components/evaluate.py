"""Evaluate every model the way it is served.

- recall: the test users' held-out next items, the user's training items
  excluded, next to a popularity baseline ranked the same way. Protocol
  ``full`` ranks every item exactly (recall, NDCG, hit, precision, MRR @K);
  ``sampled`` ranks the held-out item against ``negatives`` items sampled
  uniformly from those the user never interacted with (HR, NDCG, MRR @k, as
  the sequential-recommendation papers report). On session data (a test row
  per prefix of each test session, no training items to exclude) ``full``
  adds ``p@K``, the session-based papers' name for hit@K. Either way
  ``index_recall@K`` measures retrieval as served: through the ANN index,
  interests merged (ComiRec's controllable aggregation when ``diversity`` > 0);
- ranking: the ranker and its logistic-regression baseline on the
  time-ordered test impressions (AUC, logloss, GAUC by user);
- multi-task: AUC per task on the same impressions.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from components import skip
from components.artifacts import load_model, load_ranking, load_schema, load_table
from components.errors import DataError
from components.io import read_json, read_parquet, write_json
from components.params import EvaluateParams
from rechub_core import index as ann
from rechub_core.metrics import auc, exclude_and_truncate, gauc, logloss, rank_metrics, topk_metrics
from rechub_core.retrieval import controllable_aggregation
from rechub_core.scoring import full_ranking, sample_unseen_columns, sampled_ranks
from rechub_core.training.trainer import predict


def pairs_of_users(row_users: np.ndarray, users: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, values)`` pairing each row ``r`` with every ``values[j]`` whose ``users[j] == row_users[r]``
    (vectorised: each row repeated once per value of its user)."""
    order = np.argsort(users, kind="stable")
    users, values = users[order], values[order]
    start = np.searchsorted(users, row_users, side="left")
    count = np.searchsorted(users, row_users, side="right") - start  # (R,)
    rows = np.repeat(np.arange(len(row_users)), count)
    offset = np.arange(len(rows)) - np.repeat(np.cumsum(count) - count, count)  # position inside each row's run
    return rows, values[np.repeat(start, count) + offset]


class RecallData:
    """What recall evaluation needs, aligned with the recall model's item rows and the rows of recall_test
    (one per test user under leave-one-out; several per user under time_ratio, one per prefix for sessions)."""

    def __init__(self, processed: Path, recall_model: Path):
        train = read_parquet(processed / "recall_train.parquet", ["user_id", "item_id"])
        test = read_parquet(processed / "recall_test.parquet", ["user_id", "item_id"])
        self.users = _load(recall_model / "user_embeddings.npy")  # (U, D) or (U, K, D)
        self.items = _load(recall_model / "item_embeddings.npy")  # (N, D)
        self.item_ids = _load(recall_model / "item_ids.npy")  # (N,): row -> item id
        test_users = test.column("user_id").to_numpy()
        if len(self.users) != len(test_users):
            raise DataError(
                f"{recall_model / 'user_embeddings.npy'}: {len(self.users)} rows, recall_test has {len(test_users)}"
            )
        n_ids = load_schema(processed).feature("item_id").vocab_size
        self.column_of = np.full(n_ids, -1, dtype=np.int64)  # item id -> row of the item matrices
        self.column_of[self.item_ids] = np.arange(len(self.item_ids))
        self.targets = self.column_of[test.column("item_id").to_numpy()]  # (U,)
        if (self.targets < 0).any():
            missing = np.unique(test.column("item_id").to_numpy()[self.targets < 0])[:5]
            raise DataError(f"{recall_model / 'item_ids.npy'}: has no row for recall_test items {missing.tolist()}")
        train_cols = self.column_of[train.column("item_id").to_numpy()]
        train_users = train.column("user_id").to_numpy()
        rows, cols = pairs_of_users(test_users, train_users, train_cols)
        # each row's user's training items are excluded from its ranking, but never its own target: an item
        # consumed again (a repeat purchase) must be rankable, or it could never be a hit
        keep = (cols >= 0) & (cols != self.targets[rows])
        self.seen_rows, self.seen_cols = rows[keep], cols[keep]
        self._logs = (test_users, np.concatenate([train_users, test_users]), np.concatenate([train_cols, self.targets]))
        self.counts = np.bincount(train_cols[train_cols >= 0], minlength=len(self.item_ids)).astype(np.float32)
        self.item_slots = None
        if (recall_model / "interest_groups.npy").exists():  # per-cluster retrieval: item -> its group's slot
            interest_groups = np.load(recall_model / "interest_groups.npy")
            slot_of = np.full(int(max(interest_groups.max(), 0)) + 1, -1)
            slot_of[interest_groups] = np.arange(len(interest_groups))
            item_groups = np.load(recall_model / "item_groups.npy")
            inside = item_groups < len(slot_of)
            self.item_slots = np.where(inside, slot_of[np.minimum(item_groups, len(slot_of) - 1)], -1)

    @cached_property
    def touched(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows, columns): every item each row's user interacted with, training and test, its own target
        too: what a sampled negative must not be ("items the user never interacted with")."""
        rows, cols = pairs_of_users(*self._logs)
        keep = cols >= 0
        return rows[keep], cols[keep]


def _load(path: Path) -> np.ndarray:
    if not path.exists():
        raise DataError(f"{path}: missing; run train_recall first")
    return np.load(path)


def _full(data: RecallData, users: np.ndarray, items: np.ndarray, k: int, slots, rows=None) -> dict[str, float]:
    top = full_ranking(users, items, k, exclude_rows=data.seen_rows, exclude_cols=data.seen_cols, item_slots=slots)
    rows = slice(None) if rows is None else rows
    return topk_metrics(top[rows], data.targets[rows, None], k)


def sequence_driven(processed: Path, min_count: int = 2) -> np.ndarray:
    """Which ``recall_test`` rows are driven by order: the target follows the user's last item, as it
    does at least ``min_count`` times among consecutive training events (a bag of items cannot tell)."""
    schema = load_schema(processed)
    train = load_table(processed, "recall_train", schema, ["hist", "item_id"])
    test = load_table(processed, "recall_test", schema, ["hist", "item_id"])
    n = schema.feature("item_id").vocab_size
    prev, item = train["hist"][:, -1].numpy(), train["item_id"].numpy()
    codes, counts = np.unique(prev[prev > 0] * n + item[prev > 0], return_counts=True)
    frequent = codes[counts >= min_count]
    return np.isin(test["hist"][:, -1].numpy() * n + test["item_id"].numpy(), frequent) & (test["hist"][:, -1].numpy() > 0)


def _popularity(data: RecallData) -> tuple[np.ndarray, np.ndarray]:
    """Users and items whose inner product is an item's training count."""
    return np.ones((len(data.users), 1), np.float32), data.counts[:, None]


def full_ranking_figures(data: RecallData, k: int, rows: np.ndarray | None = None) -> dict[str, float]:
    """The model's and popularity's full-ranking figures at ``k``, over ``rows`` of recall_test (all by default)."""
    figures = _full(data, data.users, data.items, k, data.item_slots, rows)
    figures[f"popularity_recall@{k}"] = _full(data, *_popularity(data), k, None, rows)[f"recall@{k}"]
    return figures


def evaluate_served(params: EvaluateParams, data: RecallData, index_dir: Path, categories: np.ndarray) -> float:
    """recall@K of retrieval as served: the ANN index, per-interest search merged (ComiRec's aggregation
    when ``params.diversity`` > 0), the user's training items excluded."""
    k = params.top_k
    index = ann.load(index_dir / "index.faiss")
    depth = min(k + int(np.bincount(data.seen_rows).max(initial=0)), index.ntotal)  # survives the exclusions
    groups = {}
    if data.item_slots is not None:
        groups = {"interest_groups": np.arange(data.users.shape[1]), "item_groups": data.item_slots}
    scores, positions = ann.search_interests(index, data.users, depth, **groups)  # (U, K*depth)
    codes = np.unique(data.seen_rows * len(data.item_ids) + data.seen_cols)
    excluded = np.isin(np.arange(len(positions))[:, None] * len(data.item_ids) + np.maximum(positions, 0), codes)
    excluded |= positions < 0
    if params.diversity > 0 and data.users.ndim == 3:
        ids = np.where(excluded, -1, data.item_ids[np.maximum(positions, 0)])
        top_ids = controllable_aggregation(ids, np.where(excluded, -np.inf, scores), categories, k, params.diversity)
        top = np.where(top_ids >= 0, data.column_of[np.maximum(top_ids, 0)], -1)
    else:
        top = exclude_and_truncate(positions, excluded, k)
    return topk_metrics(top, data.targets[:, None], k)[f"recall@{k}"]


def evaluate_recall(
    params: EvaluateParams, processed: Path, recall_model: Path, index_dir: Path
) -> dict[str, float]:
    """The protocol's figures for the model and a popularity baseline, plus recall@K as served by the index."""
    data = RecallData(processed, recall_model)
    protocol = params.protocol
    if protocol.name == "full":
        figures = full_ranking_figures(data, params.top_k)
        if read_json(processed / "meta.json").get("recall_split") == "given":  # sessions: every prefix a row
            # the session-based papers' (NARM, STAMP) P@K: the share of rows whose next item is in the top K
            figures[f"p@{params.top_k}"] = figures[f"hit@{params.top_k}"]
    else:
        generator = torch.Generator().manual_seed(protocol.seed)
        negatives = sample_unseen_columns(
            len(data.users), len(data.item_ids), protocol.negatives,
            exclude_rows=data.touched[0], exclude_cols=data.touched[1], generator=generator,
        )
        figures = rank_metrics(sampled_ranks(data.users, data.items, data.targets, negatives, data.item_slots), protocol.k)
        pop = rank_metrics(sampled_ranks(*_popularity(data), data.targets, negatives), protocol.k)
        figures[f"popularity_hr@{protocol.k}"] = pop[f"hr@{protocol.k}"]
    schema = load_schema(processed)
    categories = np.zeros(len(data.column_of), dtype=np.int64)  # no item categories: one for all (no diversity)
    if any(f.name == "category" for f in schema.groups.get("item", ())):
        items = load_table(processed, "items", schema, ["item_id", "category"])
        categories[items["item_id"].numpy()] = items["category"].numpy()
    figures[f"index_recall@{params.top_k}"] = evaluate_served(params, data, index_dir, categories)
    return figures


def _scores(model_dir: Path, table) -> np.ndarray:
    model, _ = load_model(model_dir)
    return predict(model, table)


def behavior_driven(table) -> np.ndarray:
    """Which ranking rows' target category occurs in the user's short history (``hist_category``):
    there a pooled history knows the category is present, not which behaviour relates to the target."""
    return (table["hist_category"] == table["category"].unsqueeze(1)).any(dim=1).numpy()


def evaluate_ranking(processed: Path, ranker_model: Path) -> dict[str, float]:
    schema = load_schema(processed)
    meta = read_json(ranker_model / "model.json")
    test = load_ranking(processed, "ranking_test", schema, meta["config"]["groups"])
    labels = test[meta["label"]].numpy()
    logits = _scores(ranker_model, test)
    baseline = _scores(ranker_model / "baseline", test)
    probs = torch.sigmoid(torch.from_numpy(logits)).numpy()
    figures = {"auc": auc(labels, logits), "logloss": logloss(labels, probs), "lr_auc": auc(labels, baseline)}
    if "user_id" in test.columns:  # rows of users (not Criteo's or a census's anonymous records)
        figures["gauc"] = gauc(test["user_id"].numpy(), labels, logits)
    if "behavior" in schema.groups:
        rows = behavior_driven(test)
        if 0 < labels[rows].sum() < rows.sum():
            figures["behavior_auc"] = auc(labels[rows], logits[rows])
    return figures


def evaluate_mtl(processed: Path, mtl_model: Path) -> dict[str, float]:
    """Per task on the test split: AUC (binary) or RMSE and MAE (regression). For a funnel model with
    ``conditional_logits`` (ESMM), also each later stage's own AUC on the rows that reached the stage
    before it (``conversion_given_click_auc``: CVR on clicked rows, as the ESMM paper scores it)."""
    schema = load_schema(processed)
    meta = read_json(mtl_model / "model.json")
    test = load_ranking(processed, "ranking_test", schema, meta["config"]["groups"])
    tasks, regression = meta["tasks"], set(meta.get("regression", ()))
    model, _ = load_model(mtl_model)
    outputs = predict(model, test).reshape(len(test), len(tasks))
    figures = {}
    for t, task in enumerate(tasks):
        labels = test[task].numpy()
        if task in regression:
            error = outputs[:, t] - labels
            figures[f"{task}_rmse"] = float(np.sqrt(np.mean(error**2)))
            figures[f"{task}_mae"] = float(np.mean(np.abs(error)))
        else:
            figures[f"{task}_auc"] = auc(labels, outputs[:, t])
    if hasattr(model, "conditional_logits"):
        conditional = predict(model.conditional_logits, test).reshape(len(test), len(tasks))
        for t in range(1, len(tasks)):
            reached = test[tasks[t - 1]].numpy() == 1
            labels = test[tasks[t]].numpy()[reached]
            if 0 < labels.sum() < len(labels):
                figures[f"{tasks[t]}_given_{tasks[t - 1]}_auc"] = auc(labels, conditional[reached, t])
    return figures


def run(
    params: EvaluateParams,
    *,
    processed: Path,
    recall_model: Path,
    index_dir: Path,
    ranker_model: Path,
    mtl_model: Path,
    recall: Path,
    ranking: Path,
    mtl: Path,
) -> dict[str, dict[str, float]]:
    # a part whose stage was skipped (the source has nothing for it) gets no figures
    figures = {
        "recall": {} if skip.skipped(index_dir) else evaluate_recall(params, processed, recall_model, index_dir),
        "ranking": {} if skip.skipped(ranker_model) else evaluate_ranking(processed, ranker_model),
        "mtl": {} if skip.skipped(mtl_model) else evaluate_mtl(processed, mtl_model),
    }
    write_json(recall, figures["recall"])
    write_json(ranking, figures["ranking"])
    write_json(mtl, figures["mtl"])
    return figures
