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
