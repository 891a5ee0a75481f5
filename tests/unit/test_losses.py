import math

import pytest
import torch
import torch.nn.functional as F

from rechub_core.training.losses import sampled_softmax


def test_in_batch_softmax_equals_cross_entropy_over_the_batch():
    g = torch.Generator().manual_seed(0)
    user, pos = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    ids = torch.arange(4)
    expected = F.cross_entropy(user @ pos.T / 0.1, ids)
    assert sampled_softmax(user, pos, ids, temperature=0.1) == pytest.approx(expected.item())


def test_temperature_is_applied():
    user, pos = torch.eye(3), torch.eye(3)
    ids = torch.arange(3)
    hot = sampled_softmax(user, pos, ids, temperature=1.0)
    cold = sampled_softmax(user, pos, ids, temperature=0.1)
    assert cold < hot  # sharper logits on the correct diagonal
    assert hot.item() == pytest.approx(-math.log(math.e / (math.e + 2)))


def test_accidental_hits_are_masked():
    user = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    pos = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    ids = torch.tensor([7, 7])  # both rows' positive is item 7
    loss = sampled_softmax(user, pos, ids, temperature=1.0)
    # each row's only remaining candidate is its own positive: loss 0
    assert loss.item() == pytest.approx(0.0, abs=1e-6)


def test_logq_correction_subtracts_log_frequency():
    """A popular item gets a lower corrected logit: the correction favours rare positives."""
    user = torch.zeros(2, 2)  # all raw scores equal
    pos = torch.zeros(2, 2)
    ids = torch.tensor([1, 2])
    logq = torch.log(torch.tensor([0.9, 0.1]))  # item 1 popular, item 2 rare
    per_row = []
    for row in range(2):
        logits = (user @ pos.T) - logq.unsqueeze(0)
        per_row.append(F.cross_entropy(logits[row : row + 1], torch.tensor([row])).item())
    loss = sampled_softmax(user, pos, ids, temperature=1.0, pos_logq=logq)
    assert loss.item() == pytest.approx(sum(per_row) / 2)
    # the row whose positive is popular is penalised more than the rare one
    assert per_row[0] > per_row[1]


def test_logq_correction_removes_popularity_bias_on_a_planted_example():
    """Users without preferences, items sampled by popularity.

    The full softmax's optimum is item score = log(frequency) + c. In-batch
    negatives are themselves drawn by frequency, so the uncorrected loss
    over-penalises popular items and learns a flat score (slope ~0 in
    log-frequency); with log-Q correction it recovers slope ~1.
    """
    n_items, batch = 20, 64
    freq = torch.linspace(1, 20, n_items)
    freq = freq / freq.sum()
    log_expected = torch.log(freq * batch)

    def slope(correct: bool) -> float:
        bias = torch.zeros(n_items, requires_grad=True)
        opt = torch.optim.SGD([bias], lr=0.5)
        g = torch.Generator().manual_seed(1)
        for _ in range(300):
            ids = torch.multinomial(freq, batch, replacement=True, generator=g)
            user = torch.ones(batch, 1)
            pos = bias[ids].unsqueeze(1)  # item score = its bias
            loss = sampled_softmax(user, pos, ids, temperature=1.0, pos_logq=log_expected[ids] if correct else None)
            opt.zero_grad()
            loss.backward()
            opt.step()
        x, y = torch.log(freq), bias.detach()
        return (((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum()).item()

    assert abs(slope(correct=False)) < 0.2
    assert 0.7 < slope(correct=True) < 1.3


def test_mixed_negatives_join_the_softmax():
    g = torch.Generator().manual_seed(2)
    user, pos = torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g)
    neg = torch.randn(3, 5, 4, generator=g)
    ids, neg_ids = torch.tensor([1, 2, 3]), torch.tensor([[4, 5, 6, 7, 1]] * 3)
    loss = sampled_softmax(user, pos, ids, temperature=0.5, neg=neg, neg_ids=neg_ids)
    logits = torch.cat([user @ pos.T, torch.einsum("bd,bnd->bn", user, neg)], dim=1) / 0.5
    logits[0, 3 + 4] = float("-inf")  # row 0's sampled id 1 is its own positive
    assert loss.item() == pytest.approx(F.cross_entropy(logits, torch.arange(3)).item(), rel=1e-6)


def _reference(user, pos, ids, temperature, pos_logq=None, neg=None, neg_ids=None, neg_logq=None):
    """The definition, one (B, B) matrix: other rows' copies of a row's positive masked out."""
    logits = user @ pos.T / temperature
    if pos_logq is not None:
        logits = logits - pos_logq.unsqueeze(0)
    hits = ids.unsqueeze(0) == ids.unsqueeze(1)
    hits.fill_diagonal_(False)
    logits = logits.masked_fill(hits, float("-inf"))
    if neg is not None:
        neg_logits = torch.einsum("bd,bnd->bn", user, neg) / temperature
        if neg_logq is not None:
            neg_logits = neg_logits - neg_logq
        logits = torch.cat([logits, neg_logits.masked_fill(neg_ids == ids.unsqueeze(1), float("-inf"))], dim=1)
    return F.cross_entropy(logits, torch.arange(len(ids)))


@pytest.mark.parametrize("mixed", [False, True])
def test_distinct_item_form_equals_the_definition_with_duplicates(mixed):
    g = torch.Generator().manual_seed(1)
    b, d, n = 32, 5, 4
    ids = torch.randint(1, 9, (b,), generator=g)  # many repeated positives
    item_vectors = torch.randn(10, d, generator=g)
    user = torch.randn(b, d, generator=g, requires_grad=True)
    pos = item_vectors[ids]
    logq = torch.log(torch.rand(10, generator=g))
    kwargs = {"pos_logq": logq[ids]}
    if mixed:
        neg_ids = torch.randint(1, 10, (b, n), generator=g)
        kwargs |= {"neg": item_vectors[neg_ids], "neg_ids": neg_ids, "neg_logq": logq[neg_ids]}
    ours = sampled_softmax(user, pos, ids, temperature=0.3, **kwargs)
    expected = _reference(user, pos, ids, 0.3, **kwargs)
    assert ours.item() == pytest.approx(expected.item(), rel=1e-5)
    (grad,) = torch.autograd.grad(ours, user)
    (expected_grad,) = torch.autograd.grad(expected, user)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-4, atol=1e-6)


# the shared two-tower objectives, hand-computed on one row with two negatives
USER = torch.tensor([[1.0, 0.0]])
POS = torch.tensor([[2.0, 0.0]])  # score 2
NEG = torch.tensor([[[1.0, 5.0], [-1.0, 0.0]]])  # scores 1 and -1
POS_ID, NEG_IDS = torch.tensor([4]), torch.tensor([[7, 8]])


def _sig(x):
    return 1 / (1 + math.exp(-x))


def test_pointwise_bce_hand_computed_with_temperature():
    from rechub_core.training.losses import pointwise_bce

    got = pointwise_bce(USER, POS, NEG, POS_ID, NEG_IDS, temperature=0.5)
    expected = (-math.log(_sig(4)) - math.log(1 - _sig(2)) - math.log(1 - _sig(-2))) / 3
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_bpr_and_triplet_hand_computed():
    from rechub_core.training.losses import bpr, triplet

    got = bpr(USER, POS, NEG, POS_ID, NEG_IDS, temperature=2.0)
    assert got.item() == pytest.approx((-math.log(_sig(0.5)) - math.log(_sig(1.5))) / 2, rel=1e-5)
    got = triplet(USER, POS, NEG, POS_ID, NEG_IDS, margin=1.5)
    assert got.item() == pytest.approx((0.5 + 0.0) / 2)  # margin - (2 - 1) = 0.5; margin - (2 + 1) < 0


def test_listwise_softmax_hand_computed_with_logq():
    from rechub_core.training.losses import listwise_softmax

    got = listwise_softmax(USER, POS, NEG, POS_ID, NEG_IDS, temperature=1.0)
    logits = torch.tensor([2.0, 1.0, -1.0])
    assert got.item() == pytest.approx((torch.logsumexp(logits, 0) - 2).item(), rel=1e-6)
    corrected = listwise_softmax(USER, POS, NEG, POS_ID, NEG_IDS, temperature=1.0,
                                 pos_logq=torch.tensor([0.5]), neg_logq=torch.tensor([[1.0, -1.0]]))
    logits = torch.tensor([1.5, 0.0, 0.0])
    assert corrected.item() == pytest.approx((torch.logsumexp(logits, 0) - 1.5).item(), rel=1e-6)


@pytest.mark.parametrize("name", ["pointwise_bce", "bpr", "triplet", "listwise_softmax"])
def test_sampled_negative_equal_to_the_positive_is_masked(name):
    from rechub_core.training import losses

    fn = getattr(losses, name)
    kwargs = {"margin": 1.5} if name == "triplet" else {"temperature": 1.0}
    hit = fn(USER, POS, NEG, POS_ID, torch.tensor([[4, 8]]), **kwargs)  # the first negative is item 4 itself
    alone = fn(USER, POS, NEG[:, 1:], POS_ID, NEG_IDS[:, 1:], **kwargs)
    assert hit.item() == pytest.approx(alone.item(), rel=1e-6)


def test_full_softmax_is_cross_entropy_over_the_corpus():
    from rechub_core.training.losses import full_softmax

    corpus = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    got = full_softmax(USER, corpus, torch.tensor([2]), temperature=0.5)
    logits = torch.tensor([2.0, 0.0, 2.0])
    assert got.item() == pytest.approx((torch.logsumexp(logits, 0) - 2.0).item(), rel=1e-6)


def test_hardest_in_batch_picks_the_top_scored_other_items():
    from rechub_core.training.losses import hardest_in_batch

    user = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    pos = torch.tensor([[0.1, 0.0], [0.9, 0.0], [0.0, 0.5], [0.9, 0.0]])[[0, 1, 2, 3]]
    pos_ids = torch.tensor([1, 2, 3, 2])  # item 2 twice
    vectors, ids = hardest_in_batch(user.repeat(2, 1), pos, pos_ids, 2)
    # row 0 (user axis 0, own item 1): items 2 (0.9) then 3 (0.0); row 1 (axis 1, own item 2): 3 (0.5), 1 (0.0)
    assert ids[0].tolist() == [2, 3] and ids[1].tolist() == [3, 1]
    assert ids[3].tolist() == [3, 1]  # never its own item, even though it is in the batch twice
    torch.testing.assert_close(vectors[0, 0], torch.tensor([0.9, 0.0]))
    assert hardest_in_batch(user[:1], pos[:1], pos_ids[:1], 3)[1].shape == (1, 0)  # nothing else in the batch


def test_shared_sampled_softmax_equals_the_explicit_shared_candidate_set():
    from rechub_core.training.losses import shared_sampled_softmax

    g = torch.Generator().manual_seed(0)
    b, n, d = 3, 2, 4
    user, pos = torch.randn(b, d, generator=g), torch.randn(b, d, generator=g)
    pos_ids = torch.tensor([1, 2, 3])
    neg_ids = torch.tensor([[5, 6], [5, 2], [7, 5]])  # item 5 drawn three times; row 1 draws its own positive
    table = torch.randn(8, d, generator=g)
    neg = table[neg_ids]
    neg_logq = torch.log(torch.rand(8, generator=g))[neg_ids]
    pos_logq = torch.tensor([-1.0, -2.0, -0.5])
    got = shared_sampled_softmax(user, pos, pos_ids, neg, neg_ids, temperature=0.5, pos_logq=pos_logq, neg_logq=neg_logq)
    # explicit: every one of the B*N samples is a column (duplicates included), corrected by log(B) + its logq
    cols = (user @ neg.reshape(-1, d).T) / 0.5 - (neg_logq.reshape(-1) + math.log(b))  # (B, B*N)
    cols = cols.masked_fill(neg_ids.reshape(1, -1) == pos_ids[:, None], float("-inf"))
    pos_logit = (user * pos).sum(1) / 0.5 - (pos_logq + math.log(b))
    expected = (torch.logsumexp(torch.cat([pos_logit[:, None], cols], 1), 1) - pos_logit).mean()
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)
    # one row: the same as the per-row listwise softmax
    from rechub_core.training.losses import listwise_softmax

    one = shared_sampled_softmax(user[:1], pos[:1], pos_ids[:1], neg[:1], neg_ids[:1], temperature=1.0)
    assert one.item() == pytest.approx(listwise_softmax(user[:1], pos[:1], neg[:1], pos_ids[:1], neg_ids[:1],
                                                        temperature=1.0).item(), rel=1e-6)
