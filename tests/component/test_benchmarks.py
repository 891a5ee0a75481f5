"""The benchmark's own pieces: its data, rechub's runner and the shared scorer (speed is not asserted here)."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from benchmarks import data, ours
from benchmarks.run import CONFIGS, score, score_recall

TINY = data.Shapes(ctr_rows=3000, n_users=120, n_items=80, min_events=4, max_events=12, seed=3)


@pytest.fixture(scope="module")
def bench_data(tmp_path_factory):
    return data.ensure(tmp_path_factory.mktemp("bench"), TINY)


def test_data_has_the_promised_shapes(bench_data):
    meta = json.loads((bench_data / "ctr_meta.json").read_text())
    train, test = pq.read_table(bench_data / "ctr_train.parquet"), pq.read_table(bench_data / "ctr_test.parquet")
    assert (train.num_rows, test.num_rows) == (2700, 300)
    assert len(meta["dense"]) == 13 and len(meta["sparse"]) == 26
    assert min(meta["sparse"].values()) == 11 and max(meta["sparse"].values()) == 100_001
    for name, vocab in meta["sparse"].items():
        ids = train.column(name).to_numpy()
        assert ids.min() >= 1 and ids.max() < vocab
    assert 0.05 < np.mean(train.column("click").to_numpy()) < 0.95
    log = pq.read_table(bench_data / "recall_interactions.parquet")
    user, ts = log.column("user_id").to_numpy(), log.column("ts").to_numpy()
    assert (np.diff(user) >= 0).all() and (np.diff(ts)[np.diff(user) == 0] > 0).all()


@pytest.mark.parametrize("model", sorted(CONFIGS))
def test_rechub_runner_trains_and_is_scored(model, bench_data, tmp_path):
    config = dict(CONFIGS[model], batch_size=256)
    if model in ours.MATCHING:
        result = ours.run_recall(model, bench_data, tmp_path, config)
    else:
        result = ours.run_ctr(model, bench_data, tmp_path, config, stream=model == "deepfm")
    assert result["train_samples"] > 0 and result["train_s"] > 0
    value, _ = score(model, bench_data, tmp_path)
    assert 0.0 <= value <= 1.0


def test_score_recall_by_hand(tmp_path):
    # user 1: items 1, 2 then held-out 3; user 2: items 2 then held-out 1
    log = pa.table({"user_id": [1, 1, 1, 2, 2], "item_id": [1, 2, 3, 2, 1], "ts": [1, 2, 3, 1, 2]})
    pq.write_table(log, tmp_path / "recall_interactions.parquet")
    items = np.eye(3, dtype=np.float32)  # item j+1 = basis vector j
    users = np.array([[0.9, 0.8, 0.1], [0.1, 0.9, 0.5]], dtype=np.float32)
    np.save(tmp_path / "item_vectors.npy", items)
    np.save(tmp_path / "user_vectors.npy", users)
    # user 1 may only get item 3 (1, 2 are training items): a hit at rank 1;
    # user 2 excludes item 2, ranks item 3 (0.5) above item 1 (0.1): target at rank 2
    value, figures = score_recall(tmp_path, tmp_path, k=1, metric="hit@1")
    assert value == pytest.approx(0.5)
    _, figures = score_recall(tmp_path, tmp_path, k=2, metric="hit@2")
    assert figures["hit@2"] == 1.0 and figures["mrr@2"] == pytest.approx((1 + 0.5) / 2)
