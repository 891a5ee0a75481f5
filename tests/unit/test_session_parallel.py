"""GRU4Rec's session-parallel training: the losses by hand, the slot layout, resets, the step API, a planted chain."""

import math

import pytest
import torch
from torch import nn

from rechub_core.features import Schema, SequenceFeature, SparseFeature
from rechub_core.models.matching.gru4rec import GRU4Rec, GRU4RecConfig
from rechub_core.training.objectives import SessionParallel
from rechub_core.training.session_parallel import (
    bpr_max,
    fit_session_parallel,
    session_parallel_loss,
    sessions,
    slot_layout,
    top1_max,
)
from rechub_core.training.trainer import TrainConfig


def sig(x: float) -> float:
    return 1 / (1 + math.exp(-x))


# one row: target score 1.0; negatives 0.5 and 2.0; a masked 9.0 that must not count
POS = torch.tensor([1.0])
NEG = torch.tensor([[0.5, 2.0, 9.0]])
MASK = torch.tensor([[True, True, False]])
S1, S2 = math.exp(0.5) / (math.exp(0.5) + math.exp(2.0)), math.exp(2.0) / (math.exp(0.5) + math.exp(2.0))


def test_bpr_max_by_hand():
    expected = -math.log(S1 * sig(0.5) + S2 * sig(-1.0)) + 0.5 * (S1 * 0.25 + S2 * 4.0)
    assert bpr_max(POS, NEG, MASK, 0.5).item() == pytest.approx(expected, rel=1e-6)
    # one negative: plain BPR plus reg * r_j^2
    one = bpr_max(torch.tensor([1.0]), torch.tensor([[-0.5]]), torch.tensor([[True]]), 2.0)
    assert one.item() == pytest.approx(-math.log(sig(1.5)) + 2.0 * 0.25, rel=1e-6)
    # far apart scores: -log sigmoid(-120) = 120 + log(1 + e^-120), no underflow to inf
    far = bpr_max(torch.tensor([-60.0]), torch.tensor([[60.0]]), torch.tensor([[True]]), 0.0)
    assert far.item() == pytest.approx(120.0, rel=1e-6)


def test_top1_max_by_hand_and_its_regularisation_weight():
    expected = S1 * (sig(-0.5) + 0.5 * sig(0.25)) + S2 * (sig(1.0) + 0.5 * sig(4.0))
    assert top1_max(POS, NEG, MASK, 0.5).item() == pytest.approx(expected, rel=1e-6)
    paper = S1 * (sig(-0.5) + sig(0.25)) + S2 * (sig(1.0) + sig(4.0))  # reg = 1: the paper's TOP1-max
    assert top1_max(POS, NEG, MASK, 1.0).item() == pytest.approx(paper, rel=1e-6)
    assert top1_max(POS, NEG, MASK, 0.0).item() == pytest.approx(S1 * sig(-0.5) + S2 * sig(1.0), rel=1e-6)


@pytest.mark.parametrize("loss", [bpr_max, top1_max])
def test_a_row_without_negatives_gives_zero_and_finite_gradients(loss):
    pos = torch.tensor([1.0, 2.0], requires_grad=True)
    neg = torch.tensor([[0.5, 3.0], [1.0, -1.0]], requires_grad=True)
    mask = torch.tensor([[True, False], [False, False]])
    out = loss(pos, neg, mask, 1.0)
    assert out[1] == 0 and out[0] > 0
    out.sum().backward()
    assert torch.isfinite(pos.grad).all() and torch.isfinite(neg.grad).all()
    assert pos.grad[1] == 0 and (neg.grad[1] == 0).all() and neg.grad[0, 1] == 0


def test_in_batch_negatives_mask_the_own_id_and_slots_without_a_target():
    scores = torch.randn(4, 4, generator=torch.Generator().manual_seed(0))
    targets = torch.tensor([3, 5, 3, 0])  # slots 0 and 2 share a target; slot 3 has none
    objective = SessionParallel(loss="bpr_max", score_regularization=0.7)
    total, count = session_parallel_loss(scores, targets, objective)
    assert count == 3

    def bpr(i, js):
        return bpr_max(scores[i, i : i + 1], scores[i, js].unsqueeze(0), torch.ones(1, len(js), dtype=torch.bool), 0.7)

    expected = bpr(0, [1]) + bpr(1, [0, 2]) + bpr(2, [1])
    torch.testing.assert_close(total, expected.sum())
    single = -math.log(sig(scores[0, 0].item() - scores[0, 1].item())) + 0.7 * scores[0, 1].item() ** 2
    assert bpr(0, [1]).item() == pytest.approx(single, rel=1e-5)
    assert session_parallel_loss(scores, torch.tensor([4, 4, 0, 0]), objective)[1] == 0  # nothing to rank against


# users 0..5 with runs of 3, 1, 4, 2, 1, 5 events; item ids are unique per event (1..16)
USERS = torch.tensor([0] * 3 + [1] + [2] * 4 + [3] * 2 + [4] + [5] * 5)
ITEMS = torch.arange(1, len(USERS) + 1)
SESSIONS = [[1, 2, 3], [5, 6, 7, 8], [9, 10], [12, 13, 14, 15, 16]]  # length >= 2


def test_sessions_drop_single_events():
    starts, lengths = sessions(USERS)
    assert [ITEMS[s : s + n].tolist() for s, n in zip(starts, lengths)] == SESSIONS


@pytest.mark.parametrize("num_slots", [1, 3, 4, 64])
def test_every_transition_appears_once_and_slots_reset_where_sessions_start(num_slots):
    starts, lengths = sessions(USERS)
    g = torch.Generator().manual_seed(0)
    transitions = sorted((a, b) for s in SESSIONS for a, b in zip(s, s[1:]))
    firsts = {s[0] for s in SESSIONS}
    for _ in range(3):  # three epochs, three session orders
        layout = slot_layout(starts, lengths, ITEMS, num_slots, g)
        assert layout.inputs.shape[0] == num_slots
        real = layout.targets > 0
        assert sorted(zip(layout.inputs[real].tolist(), layout.targets[real].tolist())) == transitions
        assert ((layout.inputs == 0) <= (layout.targets == 0)).all()  # padding targets nothing
        for s in range(num_slots):
            for t in range(layout.inputs.shape[1]):
                item = layout.inputs[s, t].item()
                if item == 0:  # past the end of the stream
                    continue
                assert layout.reset[s, t] == (t == 0 or item in firsts), (s, t)
                if 0 < t and not layout.reset[s, t]:  # continuing: the previous step fed the previous event
                    assert layout.inputs[s, t - 1] == item - 1


class Counter(nn.Module):
    """A stand-in whose state counts the steps since its slot's last reset."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(len(ITEMS) + 1, 2)
        self.seen: list[tuple[torch.Tensor, bool]] = []

    def initial_state(self, batch_size):
        return torch.zeros(1, batch_size, 1)

    def step(self, ids, h):
        self.seen.append((h[0, :, 0].detach().clone(), h.requires_grad))
        out = self.emb(ids)  # (S, 2)
        return out, h + 1 + 0 * out.sum(-1).reshape(1, -1, 1)

    def item_embedding(self, batch):
        return self.emb(batch["item_id"])


@pytest.mark.parametrize("bptt", [1, 3])
def test_trainer_resets_the_state_at_session_starts_and_detaches_every_bptt_steps(bptt):
    model = Counter()
    config = TrainConfig(epochs=1, batch_size=3)
    history = fit_session_parallel(
        model, USERS, ITEMS, SessionParallel(bptt=bptt), config, generator=torch.Generator().manual_seed(0)
    )
    assert len(history) == 1 and math.isfinite(history[0]["train_loss"])
    layout = slot_layout(*sessions(USERS), ITEMS, 3, torch.Generator().manual_seed(0))  # the epoch's layout
    steps = layout.inputs.shape[1]
    assert len(model.seen) == steps
    since = torch.zeros(3)
    for t, (h, tracked) in enumerate(model.seen):
        since = torch.where(layout.reset[:, t], 0.0, since)
        assert torch.equal(h, since), t
        assert tracked == (t % bptt != 0), t
        since = since + 1
    assert model.emb.sparse is False  # sparse gradients only while training


def test_gru4rec_user_embedding_equals_stepping_through_the_real_items():
    n_items, length = 21, 7
    schema = Schema({"user": (SequenceFeature("hist", n_items, length, shares="item_id"),),
                     "item": (SparseFeature("item_id", n_items),)})
    torch.manual_seed(0)
    model = GRU4Rec(schema, GRU4RecConfig(embed_dim=6, hidden_dim=10, num_layers=2, hidden_dropout=0.3)).eval()
    hist = torch.tensor([[3, 4, 5, 6, 7, 8, 9], [0, 0, 0, 11, 2, 2, 20], [0, 0, 0, 0, 0, 0, 1]])
    user = model.user_embedding({"hist": hist})
    for row in range(len(hist)):
        h = model.initial_state(1)
        for item in hist[row][hist[row] > 0]:
            out, h = model.step(item.reshape(1), h)
        torch.testing.assert_close(user[row : row + 1], out, rtol=0, atol=1e-6)
    assert model.initial_state(4).shape == (2, 4, 10)
    with pytest.raises(ValueError, match="num_layers"):
        GRU4RecConfig(num_layers=0)


N_ITEMS, L = 31, 8  # ids 1..30; item i is always followed by i % 30 + 1


def chain_log(n_users: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A flat event log, ordered by user, of runs of 1..12 consecutive chain items."""
    length = torch.randint(1, 13, (n_users,), generator=g)
    start = torch.randint(1, N_ITEMS, (n_users,), generator=g)
    users = torch.repeat_interleave(torch.arange(n_users), length)
    offset = torch.arange(len(users)) - torch.repeat_interleave(torch.cumsum(length, 0) - length, length)
    items = (torch.repeat_interleave(start, length) - 1 + offset) % (N_ITEMS - 1) + 1
    return users, items


@pytest.mark.parametrize("loss", ["bpr_max", "top1_max"])
def test_gru4rec_learns_a_planted_chain(loss):
    g = torch.Generator().manual_seed(0)
    users, items = chain_log(300, g)
    schema = Schema({"user": (SequenceFeature("hist", N_ITEMS, L, shares="item_id"),),
                     "item": (SparseFeature("item_id", N_ITEMS),)})
    torch.manual_seed(0)
    model = GRU4Rec(schema, GRU4RecConfig(embed_dim=16, hidden_dim=32, hidden_dropout=0.0))
    config = TrainConfig(epochs=6, batch_size=32, learning_rate=0.02)
    history = fit_session_parallel(model, users, items, SessionParallel(loss=loss, bptt=2), config, generator=g)
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    # held-out histories: left-padded runs of 1..L chain items
    last = torch.randint(1, N_ITEMS, (200,), generator=g)
    n = torch.randint(1, L + 1, (200, 1), generator=g)
    back = torch.arange(L - 1, -1, -1)  # (L,): steps before the most recent item
    hist = torch.where(back < n, (last.unsqueeze(1) - 1 - back) % (N_ITEMS - 1) + 1, 0)  # (200, L)
    with torch.no_grad():
        scores = model.user_embedding({"hist": hist}) @ model.item_embedding({"item_id": torch.arange(N_ITEMS)}).T
    scores[:, 0] = -torch.inf  # padding is no item
    accuracy = (scores.argmax(1) == last % (N_ITEMS - 1) + 1).float().mean().item()
    assert accuracy > 0.8, accuracy  # chance is 1/30


def test_extra_samples_are_negatives_except_the_rows_own_target():
    from rechub_core.training.objectives import SessionParallel
    from rechub_core.training.session_parallel import bpr_max, session_parallel_loss

    objective = SessionParallel(extra_negatives=2, score_regularization=0.0)
    targets = torch.tensor([4, 0])  # slot 1 has no next event: only row 0 counts
    extra = torch.tensor([4, 9])  # the first sample is row 0's own target: masked
    scores = torch.tensor([[2.0, 7.0, 5.0, -1.0], [0.0, 0.0, 0.0, 0.0]])
    loss, n = session_parallel_loss(scores, targets, objective, extra)
    assert n == 1  # row 0's only negative is sample 9 (slot 1's target is not real)
    expected = bpr_max(torch.tensor([2.0]), torch.tensor([[-1.0]]), torch.tensor([[True]]), 0.0)
    assert loss.item() == pytest.approx(expected.item())
