"""How a matching model is trained: the objectives ``train_recall.objective`` names.

Each objective is a config dataclass with a ``name`` literal, so params choose
one by name and carry only the fields it uses. The shared two-tower
objectives score ``user_embedding`` against ``item_embedding`` and train
every matching model (``fit_two_tower``); a few models also have their
paper's own objective (``next_item``, ``session_parallel``,
``divide_and_conquer``), listed on their registry entry.

Negatives for ``pointwise``, ``pairwise``, ``triplet``, ``listwise`` and
``mixed`` are the ``negative_sample`` stage's (its ``distribution``:
uniform or popularity); ``in_batch`` uses the other rows' positives;
``full_softmax`` scores every item. Accidental hits (a negative equal to the
row's positive) are masked everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


def _check_temperature(temperature: float) -> None:
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")


def _check_hard(hard_negatives: int) -> None:
    if hard_negatives < 0:
        raise ValueError(f"hard_negatives must be >= 0, got {hard_negatives}")


@dataclass
class Pointwise:
    """Binary cross-entropy: the positive's score/T against label 1, each sampled negative's against 0."""

    name: Literal["pointwise"] = "pointwise"
    temperature: float = 1.0

    def __post_init__(self):
        _check_temperature(self.temperature)


@dataclass
class Pairwise:
    """BPR (Rendle et al., UAI 2009): ``-log sigmoid((s+ - s-) / T)`` per (positive, negative) pair.

    ``hard_negatives`` adds, per row, that many of the batch's other positives
    that the current model scores highest (online hard-negative mining, Huang
    et al., KDD 2020, Sec. 4.1) to the sampled negatives.
    """

    name: Literal["pairwise"] = "pairwise"
    temperature: float = 1.0
    hard_negatives: int = 0

    def __post_init__(self):
        _check_temperature(self.temperature)
        _check_hard(self.hard_negatives)


@dataclass
class Triplet:
    """Triplet hinge of Huang et al., KDD 2020 (Facebook EBR), Eq. 1: ``max(0, margin - (s+ - s-))``.

    With cosine scores ``s``, ``1 - s`` is the paper's distance. ``hard_negatives`` as in ``Pairwise``.
    """

    name: Literal["triplet"] = "triplet"
    margin: float = 0.1
    hard_negatives: int = 2

    def __post_init__(self):
        if not self.margin > 0:
            raise ValueError(f"margin must be positive, got {self.margin}")
        _check_hard(self.hard_negatives)


@dataclass
class Listwise:
    """Sampled softmax, scores / T: each row's positive against every negative sampled for the batch.

    As the papers' sampled softmax (Jean et al., ACL 2015; TensorFlow's
    ``sampled_softmax_loss``), the batch's samples are one candidate set shared
    by all rows. ``logq_correction`` subtracts the log of each candidate's
    expected count under the negative sampler, so the softmax estimates the
    full one.
    """

    name: Literal["listwise"] = "listwise"
    temperature: float = 0.1
    logq_correction: bool = True

    def __post_init__(self):
        _check_temperature(self.temperature)


@dataclass
class InBatch:
    """In-batch softmax: each row's positive against the other rows' positives, scores / T.

    ``logq_correction`` (Yi et al., RecSys 2019): ``counts`` subtracts the log
    of each item's frequency among training positives; ``streaming`` uses the
    paper's streaming estimate (Algorithm 2), updated batch by batch;
    ``none`` leaves popular items over-penalised.
    """

    name: Literal["in_batch"] = "in_batch"
    temperature: float = 0.05
    logq_correction: Literal["none", "counts", "streaming"] = "counts"

    def __post_init__(self):
        _check_temperature(self.temperature)


@dataclass
class Mixed:
    """In-batch softmax plus the sampled negatives (Yang et al., WWW 2020, mixed negative sampling).

    ``logq_correction`` corrects in-batch items by their training frequency
    and sampled ones by the sampler's probability.
    """

    name: Literal["mixed"] = "mixed"
    temperature: float = 0.05
    logq_correction: bool = True

    def __post_init__(self):
        _check_temperature(self.temperature)


@dataclass
class FullSoftmax:
    """Cross-entropy over every item of the corpus (no sampling), scores / T."""

    name: Literal["full_softmax"] = "full_softmax"
    temperature: float = 1.0

    def __post_init__(self):
        _check_temperature(self.temperature)


@dataclass
class NextItem:
    """SASRec's objective (Kang & McAuley, ICDM 2018): BCE at every position, one unseen negative each.

    Trains on each user's latest sequence; the model must provide ``sequence_states``.
    """

    name: Literal["next_item"] = "next_item"


@dataclass
class SessionParallel:
    """GRU4Rec's training (Hidasi et al., ICLR 2016; losses of Hidasi & Karatzoglou, CIKM 2018).

    Sessions (a user's events, in time order) are laid end to end in
    ``batch_size`` parallel slots; each step feeds every slot's current event
    and scores the next one against the other slots' next events. The hidden
    state carries across steps and is reset where a new session starts.
    ``loss``: ``bpr_max`` or ``top1_max``; ``score_regularization`` is the
    weight of their softmax-weighted squared negative scores; ``bptt`` is how
    many steps are back-propagated together. ``extra_negatives`` samples per
    step, shared by the slots, are added to the negatives (CIKM 2018, Sec.
    4.1), drawn proportionally to ``item support ** sample_alpha``.
    """

    name: Literal["session_parallel"] = "session_parallel"
    loss: Literal["bpr_max", "top1_max"] = "bpr_max"
    score_regularization: float = 1.0
    bptt: int = 1
    extra_negatives: int = 1024
    sample_alpha: float = 0.0

    def __post_init__(self):
        if self.extra_negatives < 0 or self.sample_alpha < 0:
            raise ValueError(
                f"extra_negatives and sample_alpha must be >= 0, got {self.extra_negatives}, {self.sample_alpha}"
            )
        if self.score_regularization < 0:
            raise ValueError(f"score_regularization must be >= 0, got {self.score_regularization}")
        if self.bptt < 1:
            raise ValueError(f"bptt must be at least 1, got {self.bptt}")


@dataclass
class DivideAndConquer:
    """Kuaishou's multi-task retrieval objective (Zhang et al., WWW 2023).

    Items are divided into clusters; retrieving within a cluster is a task.
    Each training row is a task of its positive's cluster: the model's
    task-specific user vector scores the positive against ``num_negatives``
    items drawn uniformly from the same cluster (the hard negatives of that
    task) in a softmax with temperature ``temperature``.
    """

    name: Literal["divide_and_conquer"] = "divide_and_conquer"
    num_negatives: int = 32
    temperature: float = 0.1

    def __post_init__(self):
        if self.num_negatives < 1:
            raise ValueError(f"num_negatives must be at least 1, got {self.num_negatives}")
        _check_temperature(self.temperature)


# every matching model trains with these; the others need a model that supports them
TWO_TOWER = (Pointwise, Pairwise, Triplet, Listwise, InBatch, Mixed, FullSoftmax)
MODEL_SPECIFIC = (NextItem, SessionParallel, DivideAndConquer)
Objective = Pointwise | Pairwise | Triplet | Listwise | InBatch | Mixed | FullSoftmax | NextItem | SessionParallel | DivideAndConquer
