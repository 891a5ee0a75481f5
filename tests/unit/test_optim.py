"""Row-sparse Adam against torch's Adam, and the sparse-gradient switch."""

import torch
import torch.nn.functional as F
from torch import nn

from rechub_core.training.optim import RowSparseAdam, adam_for, sparse_embeddings


def _train(optimizer_cls, sparse: bool, ids_per_step, weight_decay=0.0):
    torch.manual_seed(0)
    table = nn.Parameter(torch.randn(6, 3))
    target = torch.randn(6, 3)
    opt = optimizer_cls([table], lr=0.1, weight_decay=weight_decay)
    for ids in ids_per_step:
        opt.zero_grad()
        loss = ((F.embedding(ids, table, sparse=sparse) - target[ids]) ** 2).sum()
        loss.backward()
        opt.step()
    return table.detach()


def test_equals_adam_when_every_row_is_touched_every_step():
    steps = [torch.tensor([0, 1, 2, 3, 4, 5, 2, 2])] * 4  # duplicates sum, as in a dense gradient
    for wd in (0.0, 0.01):
        expected = _train(torch.optim.Adam, False, steps, wd)
        torch.testing.assert_close(_train(RowSparseAdam, True, steps, wd), expected)
        torch.testing.assert_close(_train(RowSparseAdam, False, steps, wd), expected)  # dense gradients too


def test_untouched_rows_and_their_moments_do_not_move():
    torch.manual_seed(0)
    start = _train(RowSparseAdam, True, [])
    after = _train(RowSparseAdam, True, [torch.tensor([1, 4, 4])] * 3)
    untouched = [0, 2, 3, 5]
    assert torch.equal(after[untouched], start[untouched])
    assert not torch.equal(after[[1, 4]], start[[1, 4]])


def test_sparse_embeddings_switches_and_restores():
    model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 1))
    with sparse_embeddings(model):
        assert model[0].sparse
        out = model(torch.tensor([1, 2])).sum()
        out.backward()
        assert model[0].weight.grad.is_sparse and not model[1].weight.grad.is_sparse
        opt = adam_for(model, 0.01, 0.0)
        opt.step()
    assert not model[0].sparse


def test_distinct_rows_agree_for_both_strategies():
    from rechub_core.training.optim import _distinct_rows

    index = torch.tensor([5, 1, 5, 9, 1, 0])
    for num_rows in (10, 1000):  # mask-and-count, then sort
        rows, inverse = _distinct_rows(index, num_rows)
        assert rows.tolist() == [0, 1, 5, 9]
        assert torch.equal(rows[inverse], index)
