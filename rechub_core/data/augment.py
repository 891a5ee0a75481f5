"""Time-interval-aware sequence augmentation and the contrastive loss it feeds.

Dang, Yang, Guo, Jiang, Wang, Xu, Sun & Liu, "Uniform Sequence Better: Time
Interval Aware Data Augmentation for Sequential Recommendation", AAAI 2023
(TiCoSeRec). Five operators transform a user's history using the time
intervals between consecutive items, on the premise that a sequence whose
intervals are uniform is the better training signal. Two augmented views of
each history are pulled together by a contrastive loss (CoSeRec: Liu et al.,
2021; CL4SRec: Xie et al., ICDE 2022), added to the recommendation loss.

Every operator works on a batch of left-padded histories ``items (B, L)``
(0 = padding, real items in time order, most recent last) with their
timestamps ``times (B, L)``, draws its randomness from an explicit
``torch.Generator``, and returns ``(items, times)`` of the same shape, still
left-padded, holding only ids of the input or of the correlated-item table at
real positions. No Python loop runs over rows. With ``n`` a row's real items
and an item's *interval* the time to the next item:

- ``ti_crop``: keeps the contiguous window of ``max(1, floor(ratio * n))``
  items whose intervals have the smallest variance (the most uniform one).
- ``ti_mask``: removes ``floor(ratio * n)`` items (at most ``n - 1``), at
  random (``mode="random"``, the reference code's default) or those with the
  largest / smallest intervals; the rest close up to the right.
- ``ti_reorder``: shuffles the most uniform window of ``floor(ratio * n)``
  items (none if fewer than 2); nothing outside it moves.
- ``ti_substitute``: replaces the ``max(1, floor(ratio * n))`` items with the
  smallest intervals (at most ``n - 1``; none when ``n < 2``) by their
  correlated items.
- ``ti_insert``: after each of the ``max(1, floor(ratio * n))`` items with the
  largest intervals (at most ``n - 1``; none when ``n < 2``) inserts its
  correlated item, at the midpoint of the gap; the most recent ``L`` items are
  kept.

Ties (equal variances or intervals) are broken uniformly at random.

Departures from the authors' code (github.com/KingGugu/TiCoSeRec,
``src/data_augmentation_time.py``), each deliberate:

- Mask: the reference overwrites masked items with 0, its padding id, which
  its SASRec then leaves out of attention. Our id space has no mask id either
  (0 is padding, 1..N-1 are items), and our encoders read the user vector at
  the last position and need real items contiguous at the right (left
  padding), so a masked item is removed and the remaining items close up. The
  model sees the same items either way; only their positions shift. At least
  one item is always kept.
- Interval-guided mask / substitute / insert pick the k items with the
  extreme intervals; the reference's ``diff_sorted.index(i)`` loop picks the
  ranks of the first k intervals instead, which we take for a slip.
- A window's uniformity is the variance of all its ``k - 1`` intervals; the
  reference drops the window's last timestamp (its ``k - 2`` intervals).
- The correlated item of an item is its single best ItemCF-IUF neighbour, as
  the reference's default offline similarity, but co-occurrence is counted
  within ``window`` positions of each other in a training sequence (not the
  whole history, which is quadratic in its length); see ``correlated_items``.
- Not carried over: the reference's warm-up epochs, its switch to an online
  (embedding-based) similarity later in training, and the share of
  least-uniform users left unaugmented.

The contrastive loss (``info_nce``) is NT-Xent: for ``B`` pairs of views, each
view's positive is its partner and its negatives the other ``2B - 2`` views,
on cosine similarity divided by a temperature (the reference's NCELoss uses raw
dot products of the flattened sequence states; we use the model's user vector).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

Operator = Literal["crop", "mask", "reorder", "substitute", "insert"]
OPERATORS: tuple[Operator, ...] = get_args(Operator)
MaskMode = Literal["random", "maximum", "minimum"]


# ---------------------------------------------------------------------------------------------------------------
# configuration (the ``train_recall.augmentation`` block of params.yaml)


@dataclass
class NoAugmentation:
    """No augmentation and no contrastive loss."""

    name: Literal["none"] = "none"


def _check_operators(key: str, operators: list) -> None:
    if len(set(operators)) != len(operators):
        raise ValueError(f"{key} lists an operator twice: {operators}")


@dataclass
class TiCoSeRec:
    """TiCoSeRec's operators and a contrastive auxiliary loss (defaults: the authors' code).

    Each row's two views each come from one operator drawn uniformly from
    ``operators``; rows with at most ``short_length`` history items draw from
    ``short_operators`` instead (the paper's control strategy: short histories
    gain items rather than lose them). ``correlation_window``: how far apart
    two items of a training sequence may be to count as co-occurring for the
    correlated-item table. The loss is ``weight * info_nce(view_a, view_b,
    temperature)``; ``seed`` seeds the augmentation's generator.
    """

    name: Literal["ticoserec"] = "ticoserec"
    operators: list[Operator] = field(default_factory=lambda: list(OPERATORS))
    crop_ratio: float = 0.4
    mask_ratio: float = 0.7
    mask_mode: MaskMode = "random"
    reorder_ratio: float = 0.5
    substitute_ratio: float = 0.2
    insert_ratio: float = 0.5
    short_length: int = 12
    short_operators: list[Operator] = field(default_factory=lambda: ["substitute", "insert", "mask"])
    correlation_window: int = 3
    weight: float = 0.1
    temperature: float = 1.0
    seed: int = 0

    def __post_init__(self):
        if not self.operators:
            raise ValueError("operators must name at least one operator")
        _check_operators("operators", self.operators)
        _check_operators("short_operators", self.short_operators)
        if self.short_length < 0:
            raise ValueError(f"short_length must be >= 0, got {self.short_length}")
        if self.short_length > 0 and not self.short_operators:
            raise ValueError("short_operators must name at least one operator when short_length > 0")
        for name in ("crop_ratio", "mask_ratio", "reorder_ratio", "substitute_ratio", "insert_ratio"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {value}")
        if self.correlation_window < 1:
            raise ValueError(f"correlation_window must be at least 1, got {self.correlation_window}")
        if not self.weight > 0:
            raise ValueError(f"weight must be positive, got {self.weight}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")


Augmentation = NoAugmentation | TiCoSeRec
AUGMENTATIONS = (NoAugmentation, TiCoSeRec)


# ---------------------------------------------------------------------------------------------------------------
# shared pieces


def _lengths(items: torch.Tensor) -> torch.Tensor:
    return (items > 0).sum(dim=1)  # (B,)


def _real(items: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
    """``(B, L)``: the last ``n`` positions of each row."""
    length = items.shape[1]
    return torch.arange(length, device=items.device) >= (length - n).unsqueeze(1)  # (B, L)


def _intervals(times: torch.Tensor, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each position's interval to the next item ``(B, L)`` (float64) and whether it has one ``(B, L)``."""
    gap = (times[:, 1:] - times[:, :-1]).abs().to(torch.float64)  # (B, L-1)
    has_next = torch.zeros_like(real)
    has_next[:, :-1] = real[:, :-1]  # left padding: a real position's successor is real
    gap = torch.cat([gap, gap.new_zeros(gap.shape[0], 1)], dim=1)  # (B, L)
    return torch.where(has_next, gap, 0.0), has_next


def _count(ratio: float, n: torch.Tensor, *, at_least_one: bool) -> torch.Tensor:
    count = torch.floor(ratio * n.to(torch.float64)).long()  # (B,)
    return count.clamp(min=1) if at_least_one else count


def _compact(items: torch.Tensor, times: torch.Tensor, keep: torch.Tensor, length: int):
    """The kept entries of ``(B, W)`` rows, in order, left-padded into ``(B, length)``; the last ``length`` kept win."""
    b, width = items.shape
    from_end = keep.flip(1).long().cumsum(dim=1).flip(1)  # (B, W): kept entries at or after each one
    target = length - from_end  # (B, W): where a kept entry lands
    ok = keep & (target >= 0)
    # every dropped entry gets a scratch column of its own, so no two writes collide
    index = torch.where(ok, target, length + torch.arange(width, device=items.device))  # (B, W)
    out_items = items.new_zeros(b, length + width).scatter_(1, index, torch.where(ok, items, 0))
    out_times = times.new_zeros(b, length + width).scatter_(1, index, torch.where(ok, times, 0))
    return out_items[:, :length], out_times[:, :length]  # (B, L), (B, L)


def _pick(key: torch.Tensor, candidates: torch.Tensor, count: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``(B, L)`` bool: per row, the ``count`` candidates with the smallest ``key``, ties broken at random."""
    b, length = key.shape
    noise = torch.rand((b, length), generator=generator, dtype=torch.float64)
    shuffled = noise.argsort(dim=1)  # (B, L): a random order ...
    key = torch.where(candidates, key, torch.inf).gather(1, shuffled)
    order = shuffled.gather(1, key.sort(dim=1, stable=True).indices)  # ... stably sorted by key: positions by rank
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(length, device=key.device).expand(b, -1))  # (B, L)
    return candidates & (rank < count.unsqueeze(1))


def _uniform_window(times: torch.Tensor, n: torch.Tensor, size: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``(B,)`` start of the window of ``size`` real items whose intervals have the smallest variance.

    A window starting at ``s`` holds the intervals ``s .. s+size-2``; their
    sums and sums of squares come from cumulative sums (intervals centred on
    the row's mean first, for precision). Ties go to a random one of them.
    """
    b, length = times.shape
    pos = torch.arange(length, device=times.device)
    real = pos >= (length - n).unsqueeze(1)
    gap, has_next = _intervals(times, real)  # (B, L)
    m_all = has_next.sum(dim=1, keepdim=True).clamp(min=1)
    gap = torch.where(has_next, gap - gap.sum(dim=1, keepdim=True) / m_all, 0.0)  # (B, L): centred
    zero = gap.new_zeros(b, 1)
    c1 = torch.cat([zero, gap.cumsum(dim=1)], dim=1)  # (B, L+1): c1[j] = sum of intervals before j
    c2 = torch.cat([zero, (gap * gap).cumsum(dim=1)], dim=1)
    size = size.unsqueeze(1)  # (B, 1)
    end = (pos + size - 1).clamp(min=0, max=length)  # (B, L): one past the window's last interval
    start = pos.expand(b, -1)
    m = (size - 1).to(torch.float64).clamp(min=1)
    mean = (c1.gather(1, end) - c1.gather(1, start)) / m
    variance = (c2.gather(1, end) - c2.gather(1, start)) / m - mean * mean  # (B, L)
    valid = (pos >= (length - n).unsqueeze(1)) & (pos <= length - size)  # (B, L): windows inside the real items
    best = torch.where(valid, variance, torch.inf).min(dim=1, keepdim=True).values
    scale = c2[:, -1:] / m_all + 1.0  # squared-interval scale: what counts as equal
    tied = valid & (variance <= best + 1e-9 * scale)
    noise = torch.rand((b, length), generator=generator, dtype=torch.float64)
    return torch.where(tied, noise, -1.0).argmax(dim=1)  # (B,)


# ---------------------------------------------------------------------------------------------------------------
# the five operators


def ti_crop(items: torch.Tensor, times: torch.Tensor, ratio: float, *, generator: torch.Generator):
    """Ti-Crop: the most uniform contiguous window of ``max(1, floor(ratio * n))`` items, left-padded."""
    n = _lengths(items)
    size = torch.minimum(_count(ratio, n, at_least_one=True), n)  # (B,)
    start = _uniform_window(times, n, size, generator).unsqueeze(1)  # (B, 1)
    pos = torch.arange(items.shape[1], device=items.device)
    keep = (pos >= start) & (pos < start + size.unsqueeze(1))  # (B, L)
    return _compact(items, times, keep, items.shape[1])


def ti_mask(items: torch.Tensor, times: torch.Tensor, ratio: float, *, mode: MaskMode = "random",
            generator: torch.Generator):
    """Ti-Mask: remove ``floor(ratio * n)`` items (at most ``n - 1``), chosen by ``mode``, and close up.

    ``random``: uniformly; ``maximum`` / ``minimum``: the items with the
    largest / smallest interval to their next item (the most recent item, with
    none, comes after all the others).
    """
    n = _lengths(items)
    real = _real(items, n)
    count = torch.minimum(_count(ratio, n, at_least_one=False), (n - 1).clamp(min=0))
    if mode == "random":
        key = torch.zeros(items.shape, dtype=torch.float64, device=items.device)
    else:
        gap, has_next = _intervals(times, real)
        key = torch.where(has_next, -gap if mode == "maximum" else gap, torch.finfo(torch.float64).max)
    masked = _pick(key, real, count, generator)
    return _compact(items, times, real & ~masked, items.shape[1])


def ti_reorder(items: torch.Tensor, times: torch.Tensor, ratio: float, *, generator: torch.Generator):
    """Ti-Reorder: shuffle the most uniform window of ``floor(ratio * n)`` items (rows with fewer than 2: unchanged).

    Timestamps stay with their positions.
    """
    b, length = items.shape
    n = _lengths(items)
    size = _count(ratio, n, at_least_one=False)  # (B,)
    start = _uniform_window(times, n, size.clamp(min=1), generator).unsqueeze(1)  # (B, 1)
    pos = torch.arange(length, device=items.device)
    inside = (pos >= start) & (pos < start + size.unsqueeze(1)) & (size >= 2).unsqueeze(1)  # (B, L)
    noise = torch.rand((b, length), generator=generator, dtype=torch.float64)
    # inside the window a random key in [start - 0.5, start + size - 0.5): never past a neighbour outside it
    low = start.to(torch.float64) - 0.5
    key = torch.where(inside, low + noise * size.unsqueeze(1), pos.to(torch.float64))
    return items.gather(1, key.argsort(dim=1)), times


def ti_substitute(items: torch.Tensor, times: torch.Tensor, ratio: float, correlated: torch.Tensor, *,
                  generator: torch.Generator):
    """Ti-Substitute: the ``max(1, floor(ratio * n))`` items (at most ``n - 1``) with the smallest intervals
    become their correlated items; rows with fewer than 2 items are unchanged."""
    n = _lengths(items)
    gap, has_next = _intervals(times, _real(items, n))
    count = torch.minimum(_count(ratio, n, at_least_one=True), (n - 1).clamp(min=0))
    chosen = _pick(gap, has_next, count, generator)
    return torch.where(chosen, correlated[items], items), times


def ti_insert(items: torch.Tensor, times: torch.Tensor, ratio: float, correlated: torch.Tensor, *,
              generator: torch.Generator):
    """Ti-Insert: after each of the ``max(1, floor(ratio * n))`` items (at most ``n - 1``) with the largest
    intervals, its correlated item, timed at the gap's midpoint; the most recent ``L`` items are kept.
    Rows with fewer than 2 items are unchanged."""
    b, length = items.shape
    n = _lengths(items)
    real = _real(items, n)
    gap, has_next = _intervals(times, real)
    count = torch.minimum(_count(ratio, n, at_least_one=True), (n - 1).clamp(min=0))
    chosen = _pick(-gap, has_next, count, generator)  # (B, L)
    following = torch.cat([times[:, 1:], times[:, -1:]], dim=1)  # (B, L): the next item's time
    # interleaved (B, 2L): slot 2q holds item q, slot 2q+1 its inserted neighbour if chosen
    both_items = torch.stack([items, correlated[items]], dim=2).reshape(b, 2 * length)
    both_times = torch.stack([times, torch.div(times + following, 2, rounding_mode="floor")], dim=2).reshape(b, 2 * length)
    keep = torch.stack([real, chosen], dim=2).reshape(b, 2 * length)
    return _compact(both_items, both_times, keep, length)


# ---------------------------------------------------------------------------------------------------------------
# correlated items, the augmented view, the contrastive loss


def correlated_items(sequences: torch.Tensor, n_items: int, window: int) -> torch.Tensor:
    """``(n_items,)``: each item's most correlated other item, from left-padded training ``sequences (U, M)``.

    ItemCF-IUF (the reference's default similarity): two items co-occur in a
    sequence when at most ``window`` positions apart; each sequence adds
    ``1 / log(1 + d)`` (``d``: its distinct items) to every pair co-occurring in
    it, once per pair; the sum is divided by ``sqrt(N_i N_j)``, ``N`` being the
    number of sequences holding an item. Ties go to the smaller id. An item
    that co-occurs with no other item (never seen, or only repeated) maps to
    itself, so substituting it changes nothing and inserting it repeats it.
    Entry 0 (padding) is 0. Vectorised with numpy; loops only over the
    ``window`` offsets.
    """
    seq = sequences.numpy() if isinstance(sequences, torch.Tensor) else np.asarray(sequences)
    seq = seq.astype(np.int64, copy=False)
    rows = np.arange(seq.shape[0])
    # distinct items per sequence and sequences per item, from the distinct (sequence, item) pairs
    pairs = np.unique(rows[:, None] * n_items + seq)
    pairs = pairs[pairs % n_items > 0]
    distinct = np.bincount(pairs // n_items, minlength=len(rows))
    holders = np.bincount(pairs % n_items, minlength=n_items).astype(np.float64)
    a_parts, b_parts, r_parts = [], [], []
    for offset in range(1, min(window, seq.shape[1] - 1) + 1):
        a, b = seq[:, :-offset], seq[:, offset:]
        ok = (a > 0) & (b > 0) & (a != b)
        r = np.broadcast_to(rows[:, None], a.shape)[ok]
        a_parts += [a[ok], b[ok]]  # both directions: the similarity is symmetric
        b_parts += [b[ok], a[ok]]
        r_parts += [r, r]
    table = np.arange(n_items, dtype=np.int64)
    if not a_parts:
        return torch.from_numpy(table)
    first, second, row = np.concatenate(a_parts), np.concatenate(b_parts), np.concatenate(r_parts)
    order = np.lexsort((second, first, row))
    first, second, row = first[order], second[order], row[order]
    once = np.ones(len(row), dtype=bool)  # each (sequence, pair) counted once
    once[1:] = (row[1:] != row[:-1]) | (first[1:] != first[:-1]) | (second[1:] != second[:-1])
    first, second, row = first[once], second[once], row[once]
    pair, inverse = np.unique(first * n_items + second, return_inverse=True)
    score = np.bincount(inverse, weights=1.0 / np.log1p(distinct[row]))  # (P,)
    left, right = pair // n_items, pair % n_items
    score = score / np.sqrt(holders[left] * holders[right])
    best = np.lexsort((right, -score, left))  # per item: highest score, then smallest id
    head = np.ones(len(best), dtype=bool)
    head[1:] = left[best][1:] != left[best][:-1]
    table[left[best][head]] = right[best][head]
    return torch.from_numpy(table)


_PAIRED = ("substitute", "insert")  # operators that need the correlated-item table


def apply_operator(op: Operator, items: torch.Tensor, times: torch.Tensor, config: TiCoSeRec,
                   correlated: torch.Tensor, generator: torch.Generator):
    """One named operator over the whole batch, with ``config``'s ratio (and mode)."""
    if op == "crop":
        return ti_crop(items, times, config.crop_ratio, generator=generator)
    if op == "mask":
        return ti_mask(items, times, config.mask_ratio, mode=config.mask_mode, generator=generator)
    if op == "reorder":
        return ti_reorder(items, times, config.reorder_ratio, generator=generator)
    if op == "substitute":
        return ti_substitute(items, times, config.substitute_ratio, correlated, generator=generator)
    if op == "insert":
        return ti_insert(items, times, config.insert_ratio, correlated, generator=generator)
    raise ValueError(f"unknown operator {op!r}; expected one of {OPERATORS}")


def draw_operators(n: torch.Tensor, config: TiCoSeRec, generator: torch.Generator) -> torch.Tensor:
    """``(B,)`` index into ``OPERATORS`` per row: uniform over the operators its length allows."""
    allowed_long = torch.tensor([op in config.operators for op in OPERATORS])
    allowed_short = torch.tensor([op in config.short_operators for op in OPERATORS])
    short = ((n <= config.short_length) & (config.short_length > 0)).unsqueeze(1)  # (B, 1); 0 turns it off
    allowed = torch.where(short, allowed_short, allowed_long)  # (B, 5)
    noise = torch.rand((len(n), len(OPERATORS)), generator=generator)
    return torch.where(allowed, noise, -1.0).argmax(dim=1)  # (B,)


def augment(items: torch.Tensor, times: torch.Tensor, config: TiCoSeRec, correlated: torch.Tensor,
            generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One augmented view of each row: an operator drawn per row (``draw_operators``), applied.

    Every operator in use runs on the whole batch (each is a few sorts and
    gathers) and each row keeps its own operator's result.
    """
    choice = draw_operators(_lengths(items), config, generator)
    out_items, out_times = items.clone(), times.clone()
    for i, op in enumerate(OPERATORS):
        if op not in config.operators and not (config.short_length > 0 and op in config.short_operators):
            continue
        new_items, new_times = apply_operator(op, items, times, config, correlated, generator)
        row = (choice == i).unsqueeze(1)  # (B, 1)
        out_items = torch.where(row, new_items, out_items)
        out_times = torch.where(row, new_times, out_times)
    return out_items, out_times


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent over ``B`` positive pairs ``a[i], b[i]`` (``(B, D)`` each), mean over the ``2B`` views.

    Each view is scored by cosine similarity / ``temperature`` against the
    other ``2B - 1`` views; the partner is the positive, the ``2B - 2`` others
    the negatives.
    """
    z = F.normalize(torch.cat([a, b]), dim=1)  # (2B, D)
    sim = z @ z.T / temperature  # (2B, 2B)
    sim = sim.masked_fill(torch.eye(len(z), dtype=torch.bool, device=z.device), float("-inf"))
    half = len(a)
    partner = torch.cat([torch.arange(half, 2 * half), torch.arange(half)]).to(z.device)  # (2B,)
    return F.cross_entropy(sim, partner)


def _user_vectors(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """``(B, D)``: the user tower's output; a multi-interest ``(B, K, D)`` is averaged over its interests."""
    user = model.user_embedding(batch)
    return user.mean(dim=1) if user.dim() == 3 else user  # (B, D)


@dataclass
class SequenceContrast:
    """The contrastive auxiliary loss, ``weight * info_nce`` of two augmented views of each row's history.

    Called as ``contrast(model, batch)`` by the trainers: reads the history
    ``batch[history]`` and its times ``batch[times]``, builds two views with
    ``augment``, runs ``model.user_embedding`` on the batch with the history
    replaced by each view (other user features unchanged) and compares the
    two vectors of every row against the batch's other views. Rows with an
    empty history have nothing to augment and are left out; a batch with fewer
    than two such rows adds 0.
    """

    config: TiCoSeRec
    correlated: torch.Tensor  # (n_items,), see correlated_items
    generator: torch.Generator
    history: str = "hist"
    times: str = "hist_ts"

    def __call__(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        items, times = batch[self.history], batch[self.times]
        rows = (items > 0).any(dim=1)  # (B,)
        if int(rows.sum()) < 2:
            return items.new_zeros((), dtype=torch.float32)
        batch = {k: v[rows] for k, v in batch.items()}
        items, times = items[rows], times[rows]
        views = [augment(items, times, self.config, self.correlated, self.generator)[0] for _ in range(2)]
        a, b = (_user_vectors(model, {**batch, self.history: v}) for v in views)
        return self.config.weight * info_nce(a, b, self.config.temperature)


AuxiliaryLoss = Callable[[nn.Module, dict[str, torch.Tensor]], torch.Tensor]
