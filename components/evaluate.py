"""Evaluate every model the way it is served.

- recall: the test users' held-out next items retrieved through the built
  index, the user's training items excluded, next to a popularity baseline
  ranked and filtered the same way;
- ranking: the ranker and its logistic-regression baseline on the
  time-ordered test impressions (AUC, logloss, GAUC by user);
- multi-task: AUC per task on the same impressions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from components.artifacts import load_model, load_schema, load_table
from components.errors import DataError
from components.io import read_json, read_parquet, write_json
from components.params import EvaluateParams
from rechub_core import index as ann
from rechub_core.metrics import auc, exclude_and_truncate, gauc, logloss, topk_metrics
from rechub_core.training.trainer import predict


def retrieval_candidates(
    processed: Path, top_k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Test targets, per-user train items (as sorted pair codes), item counts and search depth."""
    train = read_parquet(processed / "recall_train.parquet", ["user_id", "item_id"])
    test = read_parquet(processed / "recall_test.parquet", ["user_id", "item_id"])
    users, items = train.column("user_id").to_numpy(), train.column("item_id").to_numpy()
    n_items = load_schema(processed).feature("item_id").vocab_size  # every id the index can return
    seen = np.unique(users * n_items + items)  # sorted codes of (user, item) train pairs
    depth = top_k + int(np.bincount(users).max())  # enough to survive excluding any user's train items
    counts = np.bincount(items, minlength=n_items)
    return test.column("user_id").to_numpy(), test.column("item_id").to_numpy(), seen, counts, depth


def _excluded(users: np.ndarray, candidates: np.ndarray, seen: np.ndarray, n_items: int) -> np.ndarray:
    codes = users[:, None] * n_items + np.maximum(candidates, 0)
    return np.isin(codes, seen) | (candidates <= 0)


def evaluate_recall(params: EvaluateParams, processed: Path, recall_model: Path, index_dir: Path) -> dict[str, float]:
    k = params.top_k
    users, targets, seen, counts, depth = retrieval_candidates(processed, k)
    n_items = len(counts)
    queries = np.load(recall_model / "user_embeddings.npy")  # (U, D) or (U, K, D)
    if len(queries) != len(users):
        raise DataError(f"{recall_model / 'user_embeddings.npy'}: {len(queries)} rows, recall_test has {len(users)}")
    index = ann.load(index_dir / "index.faiss")
    item_ids = np.load(index_dir / "item_ids.npy")
    depth = min(depth, index.ntotal)
    positions = ann.search_interests(index, queries, depth)  # (U, K*depth)
    retrieved = np.where(positions >= 0, item_ids[np.maximum(positions, 0)], -1)
    top = exclude_and_truncate(retrieved, _excluded(users, retrieved, seen, n_items), k)
    model_figures = topk_metrics(top, targets[:, None], k)

    ranked = np.argsort(-counts, kind="stable")[: depth]
    popular = np.broadcast_to(ranked, (len(users), len(ranked)))
    pop_top = exclude_and_truncate(popular, _excluded(users, popular, seen, n_items), k)
    pop_figures = topk_metrics(pop_top, targets[:, None], k)
    return {
        f"recall@{k}": model_figures[f"recall@{k}"],
        f"ndcg@{k}": model_figures[f"ndcg@{k}"],
        f"hit@{k}": model_figures[f"hit@{k}"],
        f"popularity_recall@{k}": pop_figures[f"recall@{k}"],
    }


def _scores(model_dir: Path, table) -> np.ndarray:
    model, _ = load_model(model_dir)
    return predict(model, table)


def evaluate_ranking(processed: Path, ranker_model: Path) -> dict[str, float]:
    schema = load_schema(processed)
    test = load_table(processed, "ranking_test", schema)
    meta = read_json(ranker_model / "model.json")
    labels = test[meta["label"]].numpy()
    logits = _scores(ranker_model, test)
    probs = torch.sigmoid(torch.from_numpy(logits)).numpy()
    return {
        "auc": auc(labels, logits),
        "logloss": logloss(labels, probs),
        "gauc": gauc(test["user_id"].numpy(), labels, logits),
        "lr_auc": auc(labels, _scores(ranker_model / "baseline", test)),
    }


def evaluate_mtl(processed: Path, mtl_model: Path) -> dict[str, float]:
    schema = load_schema(processed)
    test = load_table(processed, "ranking_test", schema)
    tasks = read_json(mtl_model / "model.json")["tasks"]
    logits = _scores(mtl_model, test).reshape(len(test), len(tasks))
    return {f"{task}_auc": auc(test[task].numpy(), logits[:, t]) for t, task in enumerate(tasks)}


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
    figures = {
        "recall": evaluate_recall(params, processed, recall_model, index_dir),
        "ranking": evaluate_ranking(processed, ranker_model),
        "mtl": evaluate_mtl(processed, mtl_model),
    }
    write_json(recall, figures["recall"])
    write_json(ranking, figures["ranking"])
    write_json(mtl, figures["mtl"])
    return figures
