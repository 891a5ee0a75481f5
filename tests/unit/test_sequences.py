"""Vectorised sequence-recall data against hand-built expectations."""

import numpy as np
import pytest

from rechub_core.data.sequences import group_starts, leave_last_out, next_item_examples, user_sequences

USER = np.array([1, 1, 1, 1, 4, 4, 7])
ITEM = np.array([10, 11, 12, 13, 20, 21, 30])


def test_group_starts():
    assert group_starts(USER).tolist() == [0, 0, 0, 0, 4, 4, 6]


def test_next_item_examples_by_hand():
    ex = next_item_examples(USER, ITEM, max_len=2)
    assert ex["user_id"].tolist() == [1, 1, 1, 4]
    assert ex["hist"].tolist() == [[0, 10], [10, 11], [11, 12], [0, 20]]
    assert ex["item_id"].tolist() == [11, 12, 13, 21]
    longer = next_item_examples(USER, ITEM, max_len=4, min_history=2)
    assert longer["hist"].tolist() == [[0, 0, 10, 11], [0, 10, 11, 12]]


def test_user_sequences_keep_the_latest_items():
    seqs = user_sequences(USER, ITEM, max_len=3)
    assert seqs["user_id"].tolist() == [1, 4, 7]
    assert seqs["seq"].tolist() == [[11, 12, 13], [0, 20, 21], [0, 0, 30]]


def test_leave_last_out_keeps_single_event_users():
    assert leave_last_out(USER).tolist() == [True, True, True, False, True, False, True]


def test_matches_a_per_user_reference_on_random_logs():
    rng = np.random.default_rng(0)
    user = np.sort(rng.integers(1, 40, size=500))
    item = rng.integers(1, 100, size=500)
    ex = next_item_examples(user, item, max_len=5)
    expected = []
    for u in np.unique(user):  # the slow reference the vectorised code replaces
        items = item[user == u].tolist()
        for i in range(1, len(items)):
            expected.append([0] * max(0, 5 - i) + items[max(0, i - 5) : i])
    assert ex["hist"].tolist() == expected


def test_rejects_unsorted_logs():
    with pytest.raises(ValueError, match="sorted by user"):
        next_item_examples(np.array([2, 1]), np.array([1, 2]), max_len=2)
