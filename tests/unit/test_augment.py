"""TiCoSeRec's time-interval-aware operators (Dang et al., AAAI 2023): the invariants each promises, the
windows and positions the time intervals select on planted examples, the per-row operator draw, the
correlated-item table, and the NT-Xent loss against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from rechub_core.data.augment import (
    OPERATORS,
    SequenceContrast,
    TiCoSeRec,
    apply_operator,
    augment,
    correlated_items,
    draw_operators,
    info_nce,
    ti_crop,
    ti_insert,
    ti_mask,
    ti_reorder,
    ti_substitute,
)
from rechub_core.features import Schema, SequenceFeature, SparseFeature
from rechub_core.models.matching.sasrec import SASRec, SASRecConfig

N_ITEMS, L, B = 30, 12, 200  # ids 1..29
# no item maps to itself: every substituted or inserted item is visibly the correlated one
CORRELATED = torch.cat([torch.zeros(1, dtype=torch.long), torch.arange(1, N_ITEMS) % (N_ITEMS - 1) + 1])


def histories(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``B`` left-padded rows of 0..L items with increasing times; gaps from 1 to 1000."""
    g = torch.Generator().manual_seed(seed)
    n = torch.randint(0, L + 1, (B, 1), generator=g)
    n[:4, 0] = torch.tensor([0, 1, 2, L])
    real = torch.arange(L) >= L - n  # (B, L)
    items = torch.where(real, torch.randint(1, N_ITEMS, (B, L), generator=g), 0)
    gaps = torch.randint(1, 1000, (B, L), generator=g)
    times = torch.where(real, 10_000 + (gaps * real).cumsum(dim=1), 0)
    return items, times


def rows(items: torch.Tensor) -> list[list[int]]:
    return [[int(x) for x in row if x > 0] for row in items]


def run(op: str, items, times, seed: int = 1, **config):
    g = torch.Generator().manual_seed(seed)
    return apply_operator(op, items, times, TiCoSeRec(**config), CORRELATED, g)


def count(ratio: float, n: int, *, at_least_one: bool) -> int:
    c = math.floor(ratio * n)
    return max(c, 1) if at_least_one else c


# --- invariants every operator keeps ----------------------------------------------------------


@pytest.mark.parametrize("op", OPERATORS)
def test_every_operator_keeps_rows_left_padded_with_valid_items_and_times(op):
    items, times = histories()
    out, out_times = run(op, items, times)
    assert out.shape == items.shape and out_times.shape == times.shape
    real = out > 0
    assert (real[:, 1:] >= real[:, :-1]).all()  # once real, real to the end: left padding
    assert ((out >= 0) & (out < N_ITEMS)).all()
    assert (out_times[~real] == 0).all() and (out_times[real] > 0).all()
    assert (out[items.sum(dim=1) == 0] == 0).all()  # an empty history stays empty
    assert (real.sum(dim=1) >= (items > 0).any(dim=1).long()).all()  # a non-empty one stays non-empty
    assert (torch.diff(out_times, dim=1)[real[:, :-1]] >= 0).all()  # times stay in order


@pytest.mark.parametrize("op", OPERATORS)
def test_same_seed_same_views(op):
    items, times = histories()
    a, b = run(op, items, times, seed=5), run(op, items, times, seed=5)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


@pytest.mark.parametrize("op", ["crop", "mask", "reorder"])
def test_other_seed_other_views(op):
    """Random masks, shuffles and tie-breaks between equally uniform windows come from the generator."""
    items, times = histories()
    assert not torch.equal(run(op, items, times, seed=5)[0], run(op, items, times, seed=6)[0])


# --- what each operator changes -----------------------------------------------------------------


def test_crop_keeps_a_contiguous_window_of_the_promised_length():
    items, times = histories()
    out, _ = run("crop", items, times, crop_ratio=0.4)
    for before, after in zip(rows(items), rows(out)):
        n = len(before)
        assert len(after) == min(count(0.4, n, at_least_one=True), n)
        assert any(before[s : s + len(after)] == after for s in range(n - len(after) + 1))


def test_mask_removes_the_promised_number_of_items_and_keeps_the_order_of_the_rest():
    items, times = histories()
    for mode in ("random", "maximum", "minimum"):
        out, _ = run("mask", items, times, mask_ratio=0.5, mask_mode=mode)
        for before, after in zip(rows(items), rows(out)):
            n = len(before)
            assert len(after) == n - min(count(0.5, n, at_least_one=False), max(n - 1, 0))
            it = iter(before)
            assert all(x in it for x in after)  # a subsequence: order kept, nothing new


def test_reorder_permutes_only_inside_one_window():
    items, times = histories()
    out, out_times = run("reorder", items, times, reorder_ratio=0.5)
    assert torch.equal(out_times, times)  # time slots stay
    for before, after in zip(rows(items), rows(out)):
        assert sorted(before) == sorted(after)  # the same multiset
        moved = [i for i, (x, y) in enumerate(zip(before, after)) if x != y]
        if moved:
            size = count(0.5, len(before), at_least_one=False)
            assert moved[-1] - moved[0] < size


def test_substitute_replaces_only_with_correlated_items_and_never_the_last():
    items, times = histories()
    out, out_times = run("substitute", items, times, substitute_ratio=0.3)
    assert torch.equal(out_times, times) and torch.equal(out > 0, items > 0)
    changed = out != items
    assert torch.equal(out[changed], CORRELATED[items[changed]])
    assert not changed[:, -1].any()  # the most recent item has no interval to the next
    n = (items > 0).sum(dim=1)
    expected = torch.tensor([min(count(0.3, int(k), at_least_one=True), max(int(k) - 1, 0)) for k in n])
    assert torch.equal(changed.sum(dim=1), expected)


def _expands(out: list[int], original: list[int], inserts: int) -> bool:
    """Whether ``out`` is ``original`` with ``inserts`` correlated items, each right after the item it
    correlates with (never after the last one)."""
    if not original:
        return not out and inserts == 0
    if not out or out[0] != original[0]:
        return False
    if _expands(out[1:], original[1:], inserts):
        return True
    follows = len(original) > 1 and len(out) > 1 and out[1] == int(CORRELATED[original[0]])
    return inserts > 0 and follows and _expands(out[2:], original[1:], inserts - 1)


def test_insert_adds_correlated_items_right_after_existing_ones():
    items, times = histories()
    out, _ = run("insert", items, times, insert_ratio=0.5)
    checked = 0
    for before, after in zip(rows(items), rows(out)):
        added = min(count(0.5, len(before), at_least_one=True), max(len(before) - 1, 0))
        if len(before) + added <= L:  # nothing cut off at the front (lengths: test_insert_counts_and_times)
            assert _expands(after, before, added), (before, after)
            checked += 1
    assert checked > B // 3


def test_insert_counts_and_times():
    items, times = histories()
    out, out_times = run("insert", items, times, insert_ratio=0.5)
    n = (items > 0).sum(dim=1)
    added = torch.tensor([min(count(0.5, int(k), at_least_one=True), max(int(k) - 1, 0)) for k in n])
    assert torch.equal((out > 0).sum(dim=1), torch.clamp(n + added, max=L))
    # each original time is still there, and every new time lies within the original span
    for t_before, t_after in zip(times, out_times):
        tb, ta = t_before[t_before > 0], t_after[t_after > 0]
        if len(tb):
            assert ta.min() >= tb.min() and ta.max() == tb.max()


# --- the time intervals choose: planted examples -------------------------------------------------

# eight items 1..8; positions 2..5 (items 3..6) are evenly spaced, the rest are not
PLANTED_ITEMS = torch.tensor([[0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]])
PLANTED_TIMES = torch.tensor([[0, 0, 0, 0, 100, 101, 150, 160, 170, 180, 500, 2000]])


def test_crop_picks_the_window_with_the_most_uniform_intervals():
    out, out_times = ti_crop(PLANTED_ITEMS, PLANTED_TIMES, 0.5, generator=torch.Generator().manual_seed(0))
    assert rows(out) == [[3, 4, 5, 6]]  # intervals 10, 10, 10: variance 0
    assert out_times[0, -4:].tolist() == [150, 160, 170, 180]


def test_reorder_shuffles_the_most_uniform_window_only():
    for seed in range(20):
        out, _ = ti_reorder(PLANTED_ITEMS, PLANTED_TIMES, 0.5, generator=torch.Generator().manual_seed(seed))
        r = rows(out)[0]
        assert r[:2] == [1, 2] and r[6:] == [7, 8] and sorted(r[2:6]) == [3, 4, 5, 6]


def test_mask_by_interval_removes_the_items_before_the_largest_or_smallest_gaps():
    g = torch.Generator().manual_seed(0)
    # intervals after items 1..7: 1, 49, 10, 10, 10, 320, 1500; item 8 has none
    out, _ = ti_mask(PLANTED_ITEMS, PLANTED_TIMES, 0.25, mode="maximum", generator=g)
    assert rows(out) == [[1, 2, 3, 4, 5, 8]]  # 7 (1500) and 6 (320) removed
    out, _ = ti_mask(PLANTED_ITEMS, PLANTED_TIMES, 0.125, mode="minimum", generator=g)
    assert rows(out) == [[2, 3, 4, 5, 6, 7, 8]]  # item 1 has the smallest interval


def test_substitute_replaces_the_items_with_the_smallest_intervals():
    out, _ = ti_substitute(PLANTED_ITEMS, PLANTED_TIMES, 0.125, CORRELATED, generator=torch.Generator().manual_seed(0))
    assert rows(out) == [[2, 2, 3, 4, 5, 6, 7, 8]]  # item 1 (interval 1) became its correlated item 2


def test_insert_fills_the_largest_gaps():
    out, out_times = ti_insert(PLANTED_ITEMS, PLANTED_TIMES, 0.25, CORRELATED, generator=torch.Generator().manual_seed(0))
    # the two largest intervals follow items 7 (1500) and 6 (320): their correlated items go in at the midpoints
    assert rows(out) == [[1, 2, 3, 4, 5, 6, 7, 7, 8, 8]]
    assert out_times[0, -4:].tolist() == [340, 500, 1250, 2000]


def test_ties_are_broken_at_random():
    """Two equally uniform windows: both are cropped, depending on the seed."""
    items = torch.tensor([[1, 2, 3, 4, 5, 6]])
    times = torch.tensor([[10, 11, 12, 100, 200, 300]])  # windows (1, 2, 3) and (4, 5, 6) both have variance 0
    seen = {tuple(rows(ti_crop(items, times, 0.5, generator=torch.Generator().manual_seed(s))[0])[0]) for s in range(30)}
    assert seen == {(1, 2, 3), (4, 5, 6)}


# --- drawing operators per row ---------------------------------------------------------------------


def test_short_rows_draw_only_the_short_operators_and_long_rows_the_others():
    config = TiCoSeRec(operators=["crop", "reorder"], short_length=3, short_operators=["insert", "substitute"])
    n = torch.tensor([0, 1, 2, 3] * 500 + [4, 8, 12] * 500)
    choice = draw_operators(n, config, torch.Generator().manual_seed(0))
    names = [OPERATORS[i] for i in choice]
    short = {names[i] for i in range(len(n)) if n[i] <= 3}
    long = [names[i] for i in range(len(n)) if n[i] > 3]
    assert short == {"insert", "substitute"} and set(long) == {"crop", "reorder"}
    assert abs(long.count("crop") / len(long) - 0.5) < 0.05


def test_augment_applies_the_drawn_operator_to_each_row():
    items, times = histories()
    config = TiCoSeRec(operators=["crop", "insert"], short_length=0)
    view, view_times = augment(items, times, config, CORRELATED, torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)  # replay: the draw, then each operator in order
    choice = draw_operators((items > 0).sum(dim=1), config, g)
    crop = ti_crop(items, times, config.crop_ratio, generator=g)
    insert = ti_insert(items, times, config.insert_ratio, CORRELATED, generator=g)
    for name, (want, want_times) in (("crop", crop), ("insert", insert)):
        rows_ = choice == OPERATORS.index(name)
        assert rows_.any()
        assert torch.equal(view[rows_], want[rows_]) and torch.equal(view_times[rows_], want_times[rows_])
    assert set(choice.tolist()) <= {OPERATORS.index("crop"), OPERATORS.index("insert")}


# --- the correlated-item table ---------------------------------------------------------------------


def test_correlated_items_by_hand():
    seqs = torch.tensor([[0, 1, 2, 3, 1, 2], [4, 5, 4, 5, 1, 2], [0, 0, 0, 0, 7, 7]])
    table = correlated_items(seqs, n_items=9, window=2)
    # 1 and 2 co-occur in two sequences; 3 ties between 1 and 2 (the smaller id wins); 4 <-> 5;
    # 7 only repeats itself and 6, 8 never occur: they map to themselves; 0 stays padding
    assert table.tolist() == [0, 2, 1, 1, 5, 4, 6, 7, 8]


def test_correlated_items_weighs_by_inverse_user_frequency():
    # item 1 is next to 2 in a long sequence and next to 3 in a short one: 1/log(1+d) favours the short one
    seqs = torch.tensor([[0, 0, 0, 0, 1, 3], [4, 5, 6, 7, 1, 2]])
    assert int(correlated_items(seqs, n_items=8, window=1)[1]) == 3


def test_correlated_items_are_valid_ids():
    items, _ = histories()
    table = correlated_items(items, N_ITEMS, window=3)
    assert table.shape == (N_ITEMS,) and table[0] == 0
    assert ((table[1:] >= 1) & (table[1:] < N_ITEMS)).all()


# --- the contrastive loss --------------------------------------------------------------------------


def test_info_nce_by_hand_identical_views():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # each view: its partner at cosine 1, the two others at 0 -> -log(e / (e + 2))
    assert info_nce(a, a.clone(), 1.0).item() == pytest.approx(math.log(1 + 2 / math.e), rel=1e-6)


def test_info_nce_by_hand():
    a = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    b = torch.tensor([[0.0, 1.0], [2.0, 0.0]])
    # cosines over temperature 0.5: a0.a1 = a1.b0 = a1.b1 = r, a0.b1 = 2, a0.b0 = b0.b1 = 0
    r, e = math.sqrt(2), math.exp
    losses = [  # -log softmax of the partner among the other three views
        math.log(e(r) + e(0) + e(2)) - 0,  # a0: a1 r, b0 0 (partner), b1 2
        math.log(e(r) + e(r) + e(r)) - r,  # a1: a0 r, b0 r, b1 r (partner)
        math.log(e(0) + e(r) + e(0)) - 0,  # b0: a0 0 (partner), a1 r, b1 0
        math.log(e(2) + e(r) + e(0)) - r,  # b1: a0 2, a1 r (partner), b0 0
    ]
    assert info_nce(a, b, 0.5).item() == pytest.approx(sum(losses) / 4, rel=1e-6)


def test_sequence_contrast_trains_the_user_tower_and_skips_empty_histories():
    history = SequenceFeature("hist", N_ITEMS, L, shares="item_id")
    schema = Schema({"user": (history,), "item": (SparseFeature("item_id", N_ITEMS),)})
    model = SASRec(schema, SASRecConfig(embed_dim=8, dropout=0.0))
    items, times = histories()
    contrast = SequenceContrast(TiCoSeRec(weight=0.5), CORRELATED, torch.Generator().manual_seed(0))
    loss = contrast(model, {"hist": items, "hist_ts": times})
    assert torch.isfinite(loss) and loss > 0
    loss.backward()
    assert model.embedding.table.weight.grad is not None
    empty = {"hist": torch.zeros(4, L, dtype=torch.long), "hist_ts": torch.zeros(4, L, dtype=torch.long)}
    assert contrast(model, empty).item() == 0.0


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"operators": []}, "operators must name at least one operator"),
        ({"operators": ["crop", "crop"]}, "operators lists an operator twice"),
        ({"crop_ratio": 0.0}, "crop_ratio must be in (0, 1]"),
        ({"insert_ratio": 1.5}, "insert_ratio must be in (0, 1]"),
        ({"weight": 0.0}, "weight must be positive"),
        ({"temperature": -1.0}, "temperature must be positive"),
        ({"correlation_window": 0}, "correlation_window must be at least 1"),
        ({"short_length": -1}, "short_length must be >= 0"),
        ({"short_operators": []}, "short_operators must name at least one operator"),
    ],
)
def test_config_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        TiCoSeRec(**kwargs)
