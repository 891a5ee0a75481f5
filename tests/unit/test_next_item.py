"""SASRec's next-item objective: the unseen-item sampler, the masked loss, and learning a planted chain."""

import torch
import torch.nn.functional as F

from rechub_core.data.tables import TensorTable
from rechub_core.features import Schema, SequenceFeature, SparseFeature
from rechub_core.models.matching.sasrec import SASRec, SASRecConfig
from rechub_core.training.next_item import fit_next_item, next_item_loss, sample_unseen
from rechub_core.training.trainer import TrainConfig

N_ITEMS, L = 41, 10  # ids 1..40, histories of 10


def model(**kwargs) -> SASRec:
    history = SequenceFeature("hist", N_ITEMS, L, shares="item_id")
    schema = Schema({"user": (history,), "item": (SparseFeature("item_id", N_ITEMS),)})
    return SASRec(schema, SASRecConfig(**kwargs))


def chains(n_users: int, seed: int) -> torch.Tensor:
    """``(n_users, L+1)`` left-padded runs of 2..L+1 items where item i is always followed by i % 40 + 1."""
    g = torch.Generator().manual_seed(seed)
    start = torch.randint(1, N_ITEMS, (n_users, 1), generator=g)
    length = torch.randint(2, L + 2, (n_users, 1), generator=g)
    step = torch.arange(L + 1) - (L + 1 - length)  # (n_users, L+1): negative on padding
    return torch.where(step >= 0, (start - 1 + step) % (N_ITEMS - 1) + 1, 0)


def test_sampler_never_returns_a_seen_item_nor_padding():
    g = torch.Generator().manual_seed(0)
    seq = torch.randint(0, N_ITEMS, (500, L + 1), generator=g)
    seq[:10, :5] = 0  # left padding
    seq[10] = 7  # one item, repeated
    seq[11] = torch.tensor([0, 0, 0, 40, 39, 38, 1, 2, 3, 40, 40])  # both ends of the id range
    negatives = sample_unseen(seq, N_ITEMS, 30, g)
    assert negatives.shape == (500, 30)
    assert ((negatives >= 1) & (negatives < N_ITEMS)).all()
    assert not (negatives.unsqueeze(-1) == seq.unsqueeze(1)).any()


def test_sampler_edge_rows():
    g = torch.Generator().manual_seed(0)
    n = 6  # ids 1..5
    seq = torch.tensor([[1, 2, 3, 4, 5], [0, 1, 2, 4, 5], [0, 0, 5, 4, 2], [0, 0, 0, 0, 0]])
    negatives = sample_unseen(seq, n, 200, g)
    assert (negatives[0] == 0).all()  # saw every item: no negative
    assert (negatives[1] == 3).all()  # only one unseen item
    assert set(negatives[2].tolist()) == {1, 3}
    assert set(negatives[3].tolist()) == {1, 2, 3, 4, 5}


def test_sampler_is_uniform_over_unseen_items_and_reproducible():
    seq = torch.tensor([[0, 0, 3, 9, 9, 17, 40], [0, 0, 0, 0, 0, 0, 1], [0] * 7])
    negatives = sample_unseen(seq, N_ITEMS, 40_000, torch.Generator().manual_seed(1))
    for row in range(3):
        unseen = sorted(set(range(1, N_ITEMS)) - set(seq[row].tolist()))
        freq = torch.bincount(negatives[row], minlength=N_ITEMS).double() / negatives.shape[1]
        expected = torch.zeros(N_ITEMS, dtype=torch.float64)
        expected[unseen] = 1 / len(unseen)
        assert 0.5 * (freq - expected).abs().sum() < 0.03  # total variation
    again = sample_unseen(seq, N_ITEMS, 40_000, torch.Generator().manual_seed(1))
    assert torch.equal(negatives, again)


def test_loss_ignores_padding_targets():
    torch.manual_seed(0)
    m = model(embed_dim=8, num_blocks=1).eval()
    seq = chains(8, seed=0)
    g = torch.Generator().manual_seed(0)
    negatives = sample_unseen(seq, N_ITEMS, L, g)
    loss, count = next_item_loss(m, seq, negatives)
    inputs, targets = seq[:, :-1], seq[:, 1:]
    real = inputs > 0
    assert count == int(real.sum())
    # by hand, over real target positions only
    states = m.sequence_states(inputs)[real]  # (count, D)
    table = m.embedding.table.weight
    pos = (states * table[targets[real]]).sum(-1)
    neg = (states * table[negatives[real]]).sum(-1)
    expected = (F.softplus(-pos) + F.softplus(neg)).mean()
    torch.testing.assert_close(loss, expected)
    # other negatives at padding positions and another padding embedding change nothing
    other = torch.where(real, negatives, sample_unseen(seq, N_ITEMS, L, g))
    with torch.no_grad():
        table[0] += 3.0
    torch.testing.assert_close(next_item_loss(m, seq, other)[0], loss)
    # an all-padding row adds no target
    padded = torch.cat([seq, torch.zeros(3, L + 1, dtype=torch.long)])
    loss2, count2 = next_item_loss(m, padded, torch.cat([negatives, torch.ones(3, L, dtype=torch.long)]))
    assert count2 == count
    torch.testing.assert_close(loss2, loss)


def test_fit_next_item_is_reproducible_and_reports_epochs():
    def run():
        torch.manual_seed(0)
        m = model(embed_dim=8, num_blocks=1)
        config = TrainConfig(epochs=2, batch_size=16)
        table = TensorTable({"seq": chains(40, seed=0)})
        history = fit_next_item(m, table, N_ITEMS, config, generator=torch.Generator().manual_seed(3))
        return history, m

    (h1, m1), (h2, m2) = run(), run()
    assert [r["epoch"] for r in h1] == [1, 2]
    assert all(torch.isfinite(torch.tensor(r["train_loss"])) for r in h1)
    assert h1 == h2
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))
    assert not m1.training


def test_sasrec_learns_a_planted_chain():
    """Item i is always followed by i+1: ranked against the items not in the history, it comes first."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        m = model(embed_dim=16, num_blocks=1, dropout=0.1)
        config = TrainConfig(epochs=40, batch_size=128, learning_rate=0.02)
        table = TensorTable({"seq": chains(500, seed=0)})
        history = fit_next_item(m, table, N_ITEMS, config, generator=torch.Generator().manual_seed(0))
        test = chains(500, seed=1)
        with torch.no_grad():
            scores = m.user_embedding({"hist": test[:, :-1]}) @ m.item_embedding({"item_id": torch.arange(N_ITEMS)}).T
        scores[:, 0] = -torch.inf
        scores.scatter_(1, test[:, :-1], -torch.inf)  # the user's own items are not candidates, as in the paper
        hit_at_1 = (scores.argmax(dim=1) == test[:, -1]).float().mean().item()
    finally:
        torch.set_num_threads(threads)
    assert history[-1]["train_loss"] < 0.3 * history[0]["train_loss"]
    assert hit_at_1 > 0.85, (hit_at_1, history[-1])  # chance: about 1/35
