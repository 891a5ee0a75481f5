"""Behaviour columns of ranking rows, the inputs behaviour models share, and target attention, by hand."""

import math

import pytest
import torch

from rechub_core.data.behaviors import (
    TIME_BUCKETS,
    BehaviorLog,
    WithBehaviors,
    other_items,
    time_bucket,
    with_history_columns,
)
from rechub_core.data.tables import TensorTable
from rechub_core.features import DenseFeature, Schema, SparseFeature
from rechub_core.layers.behavior import LONG, SHORT, BehaviorInputs
from rechub_core.layers.embedding import FieldEmbedding
from rechub_core.layers.target_attention import MultiHeadTargetAttention
from tests.unit.test_models import SCHEMA, batch

HOUR = 3600


def test_time_buckets_are_log2_hours():
    seconds = torch.tensor([0, HOUR - 1, HOUR, 3 * HOUR, 7 * HOUR, 10**12])
    # 1 + floor(log2(1 + h)): h < 1 → 1; h = 1 → 2; h = 3 → 3; h = 7 → 4; huge → capped
    assert time_bucket(seconds).tolist() == [1, 1, 2, 3, 4, TIME_BUCKETS]


def _log() -> BehaviorLog:
    # user 1: items 11, 12, 13 at t = 10, 20, 30; user 3: item 31 at t = 5; user 2 has none
    return BehaviorLog(
        torch.tensor([1, 1, 1, 3]), torch.tensor([11, 12, 13, 31]), torch.tensor([1, 2, 1, 3]),
        torch.tensor([10, 20, 30, 5]),
    )


def test_window_takes_the_latest_behaviours_strictly_before_the_row_left_padded():
    window = _log().window(torch.tensor([1, 1, 1, 2, 3, 1]), torch.tensor([30, 31, 10, 50, 6, 5]), max_len=2)
    assert window["long_item"].tolist() == [[11, 12], [12, 13], [0, 0], [0, 0], [0, 31], [0, 0]]
    assert window["long_category"].tolist() == [[1, 2], [2, 1], [0, 0], [0, 0], [0, 3], [0, 0]]
    # dt = 20 s and 10 s, 11 s and 1 s, 1 s: all under an hour → bucket 1; padding 0
    assert window["long_dt"].tolist() == [[1, 1], [1, 1], [0, 0], [0, 0], [0, 1], [0, 0]]


def test_window_longer_than_the_history_pads_and_never_reads_another_user():
    window = _log().window(torch.tensor([3]), torch.tensor([100]), max_len=4)
    assert window["long_item"].tolist() == [[0, 0, 0, 31]]  # user 1's rows sit just before user 3's


def test_window_time_buckets_count_hours():
    log = BehaviorLog(torch.tensor([1, 1]), torch.tensor([5, 6]), torch.tensor([1, 1]), torch.tensor([0, 6 * HOUR]))
    window = log.window(torch.tensor([1]), torch.tensor([7 * HOUR]), max_len=2)
    assert window["long_dt"].tolist() == [[4, 2]]  # 7 h → 1 + floor(log2 8); 1 h → 2


def test_an_unsorted_log_is_refused():
    with pytest.raises(ValueError, match="sorted"):
        BehaviorLog(torch.tensor([2, 1]), torch.tensor([1, 1]), torch.tensor([1, 1]), torch.tensor([0, 0]))


def test_an_empty_log_gives_empty_windows():
    empty = torch.zeros(0, dtype=torch.long)
    window = BehaviorLog(empty, empty, empty, empty).window(torch.tensor([1, 2]), torch.tensor([5, 5]), max_len=3)
    assert all(w.tolist() == [[0, 0, 0]] * 2 for w in window.values())


def test_with_behaviors_batches_carry_each_rows_window():
    rows = TensorTable({"user_id": torch.tensor([1, 3, 1]), "ts": torch.tensor([25, 6, 31]), "click": torch.tensor([0, 1, 1])})
    table = WithBehaviors(rows, _log(), max_len=2)
    first = next(table.batches(2))
    assert first["long_item"].tolist() == [[11, 12], [0, 31]] and first["click"].tolist() == [0, 1]
    assert table["long_item"].tolist() == [[11, 12], [0, 31], [12, 13]]
    assert table.select(["long_item"])["long_item"].shape == (3, 2)


def test_other_items_never_equal_the_item_and_are_uniform():
    g = torch.Generator().manual_seed(0)
    items = torch.full((60_000,), 3)
    other = other_items(items, vocab_size=6, generator=g)  # real ids 1..5
    assert not (other == 3).any() and other.min() >= 1 and other.max() <= 5
    freq = torch.bincount(other, minlength=6)[1:].float() / len(other)
    expected = torch.tensor([0.25, 0.25, 0.0, 0.25, 0.25])
    assert torch.allclose(freq, expected, atol=0.01)
    assert other_items(torch.tensor([[0, 2]]), 6, g)[0, 0] == 0  # padding stays padding


def test_history_columns_by_hand():
    table = TensorTable({
        "hist": torch.tensor([[0, 2, 1]]), "hist_ts": torch.tensor([[0, 0, 2 * HOUR]]), "ts": torch.tensor([3 * HOUR]),
    })
    category = torch.tensor([0, 7, 8])  # item 1 → 7, item 2 → 8
    out = with_history_columns(table, category, vocab_size=3, seed=0)
    assert out["hist_category"].tolist() == [[0, 8, 7]]
    assert out["hist_dt"].tolist() == [[0, 3, 2]]  # 3 h → 1 + floor(log2 4) = 3; 1 h → 2
    assert out["hist_neg"].tolist() == [[0, 1, 2]]  # the only other real item
    assert out["hist_neg_category"].tolist() == [[0, 7, 8]]
    again = with_history_columns(table, category, vocab_size=3, seed=0)
    assert torch.equal(again["hist_neg"], out["hist_neg"])


def test_target_attention_one_head_by_hand():
    att = MultiHeadTargetAttention(2, 2, num_heads=1, head_dim=2)
    for layer in (att.query, att.key, att.value, att.out):
        torch.nn.init.eye_(layer.weight)
    target = torch.tensor([[1.0, 0.0]])
    behaviors = torch.tensor([[[9.0, 9.0], [1.0, 0.0], [0.0, 1.0]]])  # the first is padding
    mask = torch.tensor([[False, True, True]])
    # scores 1/sqrt(2) and 0 over the two real behaviours
    a = math.exp(1 / math.sqrt(2)) / (math.exp(1 / math.sqrt(2)) + 1)
    weights = att.weights(target, behaviors, mask)
    assert torch.allclose(weights, torch.tensor([[[0.0, a, 1 - a]]]))
    assert torch.allclose(att(target, behaviors, mask), torch.tensor([[a, 1 - a]]))
    changed = behaviors.clone()
    changed[0, 0] = -5.0  # padding content never matters
    assert torch.allclose(att(target, changed, mask), att(target, behaviors, mask))
    assert torch.equal(att(target, behaviors, torch.zeros_like(mask)), torch.zeros(1, 2))  # no behaviour: zero


def test_behavior_inputs_share_the_item_tables_and_keep_behaviours_out_of_the_plain_fields():
    inputs = BehaviorInputs(SCHEMA, ["user", "item", "behavior", "long"], [SHORT, LONG], dim=4)
    b = batch()
    seq, mask = inputs.sequence(b, 0)
    long, long_mask = inputs.sequence(b, 1)
    assert seq.shape == (6, 5, 8) and long.shape == (6, 12, 8)
    assert torch.equal(mask, b["hist"] > 0) and torch.equal(long_mask, b["long_item"] > 0)
    # a behaviour of the target's own item and category embeds exactly as the target
    same = {**b, "hist": b["item_id"].unsqueeze(1), "hist_category": b["category"].unsqueeze(1)}
    assert torch.equal(inputs.sequence(same, 0)[0][:, 0], inputs.target(b))
    # plain fields: user_id, gender, age_bucket, item_id, category, price_bucket (hist and the long window are not)
    assert inputs.plain_fields(b).shape == (6, 6, 4) and inputs.plain(b).shape == (6, 6 * 4 + 1)
    with pytest.raises(ValueError, match="user_id"):
        BehaviorInputs(SCHEMA, ["user", "item"], [("user_id",)], dim=4)


def test_field_embedding_turns_each_dense_value_into_a_scaled_vector():
    schema = Schema({"item": (SparseFeature("item_id", 5), DenseFeature("price"), DenseFeature("age"))})
    emb = FieldEmbedding(schema.features("item"), dim=3)
    fields = emb({"item_id": torch.tensor([1, 2]), "price": torch.tensor([2.0, 0.5]), "age": torch.tensor([1.0, -1.0])})
    assert fields.shape == (2, 3, 3) and emb.num_fields == 3
    assert torch.allclose(fields[:, 1], torch.tensor([[2.0], [0.5]]) * emb.dense_vectors[0])
    assert torch.allclose(fields[1, 2], -emb.dense_vectors[1])


def test_a_behaviour_model_missing_its_group_names_the_group_to_add():
    with pytest.raises(ValueError, match="hist_category.*add the group.*'behavior'"):
        BehaviorInputs(SCHEMA, ["user", "item"], [SHORT], dim=4)
    with pytest.raises(ValueError, match="long_item.*'long'"):
        BehaviorInputs(SCHEMA, ["user", "item", "behavior"], [SHORT, LONG], dim=4)
    BehaviorInputs(SCHEMA, ["user", "item", "behavior", "long"], [SHORT, LONG], dim=4)  # all there: builds
