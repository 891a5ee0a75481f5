"""What recall evaluation leaves out of a test row's ranking, and what its sampled negatives may be."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from components.evaluate import RecallData, full_ranking_figures
from rechub_core.features import Schema, SparseFeature

ITEM_IDS = np.array([1, 2, 3, 4, 5])


@pytest.fixture
def data(tmp_path) -> RecallData:
    """User 1 trained on items 1, 2, 3 and buys 2 again in the test period; user 2 trained on 2, then 3 and 4
    are their test rows (a time_ratio split: several test rows per user)."""
    processed, model = tmp_path / "processed", tmp_path / "model"
    processed.mkdir()
    model.mkdir()
    pq.write_table(pa.table({"user_id": [1, 1, 1, 2], "item_id": [1, 2, 3, 2]}), processed / "recall_train.parquet")
    pq.write_table(pa.table({"user_id": [1, 2, 2], "item_id": [2, 3, 4]}), processed / "recall_test.parquet")
    (processed / "schema.json").write_text(Schema({"item": (SparseFeature("item_id", 6),)}).to_json())
    # one dimension: a user scores items by their value; row 0 likes item 2 best
    np.save(model / "item_ids.npy", ITEM_IDS)
    np.save(model / "item_embeddings.npy", np.array([[1.0], [5.0], [4.0], [3.0], [2.0]], np.float32))
    np.save(model / "user_embeddings.npy", np.ones((3, 1), np.float32))
    return RecallData(processed, model)


def _pairs(rows: np.ndarray, cols: np.ndarray, n_rows: int) -> list[set[int]]:
    return [set(ITEM_IDS[cols[rows == r]].tolist()) for r in range(n_rows)]


def test_training_items_are_excluded_but_never_the_rows_own_target(data):
    assert _pairs(data.seen_rows, data.seen_cols, 3) == [{1, 3}, {2}, {2}]  # row 0: item 2 stays rankable
    figures = full_ranking_figures(data, k=1)
    # row 0's repeat purchase ranks first: a hit (it would be a miss if excluded); row 1's 3 is a hit too;
    # row 2's 4 ranks below 3
    assert figures["hit@1"] == pytest.approx(2 / 3)


def test_sampled_negatives_avoid_every_item_the_user_touched(data):
    # row 1 (user 2, target 3) may not draw user 2's other test item 4, nor their training item 2
    assert _pairs(*data.touched, 3) == [{1, 2, 3}, {2, 3, 4}, {2, 3, 4}]
