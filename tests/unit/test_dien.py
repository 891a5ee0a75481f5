"""DIEN's attentional GRU cells and their runner by hand; the auxiliary loss and the attention by hand;
the model's shapes, gradients, padding, negatives only in training, configurations and ONNX parity."""

import math

import pytest
import torch
from torch import nn

from rechub_core.features import Schema, SequenceFeature, SparseFeature
from rechub_core.layers.interest_gru import AGRUCell, AIGRUCell, AUGRUCell, InterestEvolution
from rechub_core.models.ranking.dien import DIEN, DIENConfig, next_behavior_loss
from tests.unit.checks import (
    check_auxiliary_loss_scales,
    check_loss_reaches_every_parameter,
    check_onnx_parity,
    history_padding_changed,
    onnx_inputs,
    real_history_changed,
    shift_padding_rows,
)
from tests.unit.test_models import SCHEMA, B, batch

KINDS = ["augru", "aigru", "agru"]
HISTORY = ("hist", "hist_category", "hist_dt", "hist_neg", "hist_neg_category")


def _set(param: torch.nn.Parameter, value) -> None:
    with torch.no_grad():
        param.copy_(torch.as_tensor(value, dtype=param.dtype).reshape(param.shape))


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# --- the cells, by the paper's equations -----------------------------------------------------

X = torch.tensor([[1.5], [-0.4]])  # (2, 1): two rows, one input unit
H0 = torch.tensor([[0.5], [-0.2]])  # (2, 1): their previous states
A = torch.tensor([[0.3], [1.0]])  # (2, 1): their attention scores


def test_augru_cell_by_hand():
    cell = AUGRUCell(1, 1)
    _set(cell.input.weight, [0.5, -0.3, 0.8])  # W^u, W^r, W^h
    _set(cell.input.bias, [0.1, 0.2, -0.1])  # b^u, b^r, b^h
    _set(cell.hidden.weight, [0.4, 0.6, -0.7])  # U^u, U^r, U^h
    out = cell(X, H0, A)
    for row in range(2):
        x, h, a = X[row, 0].item(), H0[row, 0].item(), A[row, 0].item()
        u = sigmoid(0.5 * x + 0.4 * h + 0.1)
        r = sigmoid(-0.3 * x + 0.6 * h + 0.2)
        candidate = math.tanh(0.8 * x + r * (-0.7 * h) - 0.1)
        scaled = a * u  # ũ = a · u
        expected = (1 - scaled) * h + scaled * candidate
        assert out[row, 0].item() == pytest.approx(expected, abs=1e-6)
    # the score matters: with a = 1 it is a plain GRU step, which differs from row 0's
    assert not torch.allclose(cell(X, H0, torch.ones_like(A))[0], out[0])


def test_agru_cell_by_hand():
    cell = AGRUCell(1, 1)
    assert cell.input.weight.shape == (2, 1)  # the reset gate and the candidate only: no update gate
    _set(cell.input.weight, [-0.3, 0.8])  # W^r, W^h
    _set(cell.input.bias, [0.2, -0.1])
    _set(cell.hidden.weight, [0.6, -0.7])  # U^r, U^h
    out = cell(X, H0, A)
    for row in range(2):
        x, h, a = X[row, 0].item(), H0[row, 0].item(), A[row, 0].item()
        r = sigmoid(-0.3 * x + 0.6 * h + 0.2)
        candidate = math.tanh(0.8 * x + r * (-0.7 * h) - 0.1)
        assert out[row, 0].item() == pytest.approx((1 - a) * h + a * candidate, abs=1e-6)


def test_aigru_cell_by_hand():
    cell = AIGRUCell(1, 1)
    gru = cell.gru  # nn.GRUCell: rows of weight_ih / weight_hh are the reset, keep (z) and new gates
    _set(gru.weight_ih, [0.7, -0.2, 0.9])
    _set(gru.bias_ih, [0.1, 0.0, -0.3])
    _set(gru.weight_hh, [0.3, 0.5, -0.4])
    _set(gru.bias_hh, [0.0, 0.2, 0.05])
    out = cell(X, H0, A)
    for row in range(2):
        x, h, a = X[row, 0].item(), H0[row, 0].item(), A[row, 0].item()
        i = a * x  # the attention scales the input
        r = sigmoid(0.7 * i + 0.1 + 0.3 * h)
        z = sigmoid(-0.2 * i + 0.0 + 0.5 * h + 0.2)
        n = math.tanh(0.9 * i - 0.3 + r * (-0.4 * h + 0.05))
        assert out[row, 0].item() == pytest.approx((1 - z) * n + z * h, abs=1e-6)


@pytest.mark.parametrize("cell_class", [AUGRUCell, AGRUCell])
def test_a_zero_score_leaves_the_state_unchanged(cell_class):
    torch.manual_seed(0)
    cell = cell_class(3, 4)
    x, h = torch.randn(5, 3), torch.randn(5, 4)
    torch.testing.assert_close(cell(x, h, torch.zeros(5, 1)), h, rtol=0, atol=0)
    assert not torch.allclose(cell(x, h, torch.full((5, 1), 0.5)), h)


# --- the runner over left-padded sequences ---------------------------------------------------

L_, D_, H_ = 5, 3, 4
# full, two padding steps, one real step, empty, and a hole (a runner carries the state through any padding)
MASK = torch.tensor([[1] * 5, [0, 0, 1, 1, 1], [0, 0, 0, 0, 1], [0] * 5, [1, 0, 1, 1, 1]]).bool()


@pytest.mark.parametrize("kind", KINDS)
def test_runner_skips_padding_steps(kind):
    torch.manual_seed(0)
    evolve = InterestEvolution(D_, H_, kind)
    x = torch.randn(len(MASK), L_, D_)
    scores = torch.rand(len(MASK), L_)
    final = evolve(x, scores, MASK)
    assert final.shape == (len(MASK), H_)
    for row in range(len(MASK)):
        h = torch.zeros(1, H_)
        for t in range(L_):  # only the real steps, by hand
            if MASK[row, t]:
                h = evolve.cell(x[row, t : t + 1], h, scores[row, t : t + 1].unsqueeze(1))
        torch.testing.assert_close(final[row], h[0], rtol=0, atol=1e-6)
    assert (final[3] == 0).all()  # the empty row ends at the zero state
    # neither the inputs nor the scores at padding matter
    noisy_x = torch.where(MASK.unsqueeze(-1), x, 100 * torch.randn_like(x))
    noisy_scores = torch.where(MASK, scores, torch.rand_like(scores))
    torch.testing.assert_close(evolve(noisy_x, noisy_scores, MASK), final, rtol=0, atol=0)
    # while a real step's score does
    changed = scores.clone()
    changed[:, -1] = 1 - changed[:, -1]
    assert not torch.allclose(evolve(x, changed, MASK)[0], final[0])


def test_runner_rejects_an_unknown_cell():
    with pytest.raises(ValueError, match="kind"):
        InterestEvolution(2, 2, "lstm")


# --- the auxiliary loss and the attention, by hand -------------------------------------------


def test_next_behavior_loss_by_hand():
    states = torch.tensor([[[1.0, 2.0], [0.0, 0.0]], [[0.5, -1.0], [2.0, 1.0]]])  # (2, 2, 2): h_t
    positives = torch.tensor([[[-1.0, -0.5], [7.0, 7.0]], [[0.5, 0.5], [1.0, 0.5]]])  # e_{t+1}
    negatives = torch.tensor([[[0.5, 0.5], [-9.0, 9.0]], [[-1.0, -0.5], [2.0, -0.5]]])  # ê_{t+1}
    pairs = torch.tensor([[True, False], [True, True]])
    loss = next_behavior_loss(states, positives, negatives, pairs)
    # <h, e> and <h, ê> of the three real pairs: (-2, 1.5), (-0.25, 0), (2.5, 3.5)
    terms = [(-2.0, 1.5), (-0.25, 0.0), (2.5, 3.5)]
    expected = -sum(math.log(sigmoid(p)) + math.log(1 - sigmoid(n)) for p, n in terms) / 3
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    # the pair that does not count has no effect, however large its products
    assert next_behavior_loss(states, positives * 100, negatives, pairs).item() != pytest.approx(expected)
    masked_only = positives.clone()
    masked_only[0, 1] = -1e4
    assert next_behavior_loss(states, masked_only, negatives, pairs).item() == pytest.approx(expected, abs=1e-6)
    assert next_behavior_loss(states, positives, negatives, torch.zeros_like(pairs)).item() == 0.0


TINY = Schema(
    {
        "user": (SequenceFeature("hist", 5, 3, shares="item_id"),),
        "item": (SparseFeature("item_id", 5), SparseFeature("category", 3)),
        "behavior": (SequenceFeature("hist_category", 3, 3, shares="category"),),
    }
)
ITEM_VALUES = [0.0, 1.0, -1.0, 2.0, 0.5]  # a one-wide embedding per item id
CATEGORY_VALUES = [0.0, 0.5, -0.5]


class _FixedStates(nn.Module):
    """Stands in for the interest extractor: hand-set states."""

    def __init__(self, states: torch.Tensor):
        super().__init__()
        self.states = states

    def forward(self, x, mask):
        return self.states, self.states[:, -1]


def tiny_model(aux_weight: float = 0.5) -> DIEN:
    model = DIEN(TINY, DIENConfig(embed_dim=1, aux_weight=aux_weight, mlp_dims=[4], dropout=0.0))
    table, offsets = model.inputs.embedding.table.weight, model.inputs.embedding.offsets
    with torch.no_grad():
        table[offsets["item_id"] : offsets["item_id"] + 5, 0] = torch.tensor(ITEM_VALUES)
        table[offsets["category"] : offsets["category"] + 3, 0] = torch.tensor(CATEGORY_VALUES)
    return model


def test_model_auxiliary_loss_by_hand():
    model = tiny_model(aux_weight=0.5)
    states = torch.tensor([[[0.0, 0.0], [1.0, 2.0], [0.3, -0.2]], [[0.5, -1.0], [2.0, 1.0], [4.0, 4.0]]])  # (2, 3, 2)
    model.extractor = _FixedStates(states)
    b = {
        "hist": torch.tensor([[0, 1, 2], [3, 4, 1]]),
        "hist_category": torch.tensor([[0, 1, 2], [2, 1, 1]]),
        "hist_neg": torch.tensor([[0, 3, 4], [1, 2, 3]]),
        "hist_neg_category": torch.tensor([[0, 2, 1], [1, 2, 2]]),
        "item_id": torch.tensor([1, 2]),
        "category": torch.tensor([1, 2]),
    }
    _, auxiliary = model.logits_and_auxiliary_loss(b)
    # pairs (row 0: t=1), (row 1: t=0, t=1); behaviours embed as [item value, category value]
    # row 0, t=1: h=[1, 2], e=(2, cat 2)=[-1, -0.5] → -2;  ê=(4, cat 1)=[0.5, 0.5] → 1.5
    # row 1, t=0: h=[0.5, -1], e=(4, cat 1)=[0.5, 0.5] → -0.25;  ê=(2, cat 2)=[-1, -0.5] → 0
    # row 1, t=1: h=[2, 1], e=(1, cat 1)=[1, 0.5] → 2.5;  ê=(3, cat 2)=[2, -0.5] → 3.5
    terms = [(-2.0, 1.5), (-0.25, 0.0), (2.5, 3.5)]
    expected = -sum(math.log(sigmoid(p)) + math.log(1 - sigmoid(n)) for p, n in terms) / 3
    assert auxiliary.item() == pytest.approx(0.5 * expected, abs=1e-6)


def test_attention_weights_by_hand():
    model = tiny_model()
    _set(model.attention.weight, [[1.0, 0.0], [0.0, 2.0]])  # W e_a = [e0, 2 e1]
    interests = torch.tensor([[[9.0, 9.0], [1.0, 0.0], [0.0, 1.0]], [[0.0, 0.0]] * 3])  # (2, 3, 2)
    target = torch.tensor([[1.0, 1.0], [1.0, 1.0]])  # W e_a = [1, 2]
    mask = torch.tensor([[False, True, True], [False, False, False]])
    weights = model.attention_weights(interests, target, mask)
    z = math.exp(1.0) + math.exp(2.0)  # scores 1 and 2 at the real steps; the padding's 27 is never seen
    torch.testing.assert_close(weights[0], torch.tensor([0.0, math.exp(1.0) / z, math.exp(2.0) / z]))
    assert (weights[1] == 0).all()  # an empty row attends to nothing


# --- the model -------------------------------------------------------------------------------


def left_padded(seed: int = 0) -> dict[str, torch.Tensor]:
    """``batch(seed)`` with histories of 0, 1, 2, 3, 5 and 5 real behaviours, left-padded; no target reads a
    padding row (category 0)."""
    b = batch(seed)
    b["category"] = b["category"].clamp(min=1)
    lengths = torch.tensor([0, 1, 2, 3, 5, 5])
    real = torch.arange(5) >= 5 - lengths.unsqueeze(1)  # (B, 5)
    for name in HISTORY:
        b[name] = torch.where(real, b[name].clamp(min=1), 0)
    return b


@pytest.mark.parametrize("kind", KINDS)
def test_every_evolution_trains(kind):
    torch.manual_seed(0)
    model = DIEN(SCHEMA, DIENConfig(evolution=kind))
    b = left_padded()
    logits, auxiliary = model.logits_and_auxiliary_loss(b)
    assert logits.shape == (B,) and auxiliary.shape == ()
    assert auxiliary.item() == pytest.approx(2 * math.log(2), abs=0.05)  # near-zero products at initialisation
    check_loss_reaches_every_parameter(model, b, logits, auxiliary)
    model.eval()
    torch.testing.assert_close(model(b), model.logits_and_auxiliary_loss(b)[0], rtol=0, atol=0)


def test_auxiliary_loss_trains_the_extractor_and_embeddings_only():
    torch.manual_seed(0)
    model = DIEN(SCHEMA, DIENConfig())
    _, auxiliary = model.logits_and_auxiliary_loss(left_padded())
    auxiliary.backward()
    for name, p in model.named_parameters():
        reached = p.grad is not None and p.grad.abs().sum() > 0
        assert reached == name.startswith(("extractor.", "inputs.")), name


def test_forward_never_reads_the_negatives():
    torch.manual_seed(0)
    model = DIEN(SCHEMA, DIENConfig()).eval()
    b = left_padded()
    serving = {k: v for k, v in b.items() if k not in ("hist_neg", "hist_neg_category")}
    torch.testing.assert_close(model(serving), model.logits_and_auxiliary_loss(b)[0], rtol=0, atol=0)
    with pytest.raises(KeyError, match="hist_neg"):
        model.logits_and_auxiliary_loss(serving)
    unweighted = DIEN(SCHEMA, DIENConfig(aux_weight=0.0)).eval()
    unweighted.load_state_dict(model.state_dict())
    logits, auxiliary = unweighted.logits_and_auxiliary_loss(serving)  # no loss: the negatives are not needed
    assert auxiliary.item() == 0.0
    torch.testing.assert_close(logits, model(serving), rtol=0, atol=0)


def test_aux_weight_scales_the_loss():
    torch.manual_seed(0)
    check_auxiliary_loss_scales(lambda w: DIEN(SCHEMA, DIENConfig(aux_weight=w)), 3.0, left_padded())


def test_auxiliary_loss_ignores_padding_and_unpaired_negatives():
    torch.manual_seed(0)
    model = DIEN(SCHEMA, DIENConfig()).eval()
    b = left_padded()
    real = b["hist"] > 0
    before = model.logits_and_auxiliary_loss(b)[1]
    # a negative counts at t+1 only when t is real too: never at padding, nor at a row's oldest behaviour
    paired = torch.cat([torch.zeros_like(real[:, :1]), real[:, :-1] & real[:, 1:]], dim=1)  # (B, L)
    read = {*b["hist"].flatten().tolist(), *b["hist_neg"][paired].tolist(), *b["item_id"].tolist()}
    unused_item = min(set(range(1, 21)) - read)  # an item no real behaviour, paired negative or target reads
    changed = dict(
        b,
        hist_neg=torch.where(paired, b["hist_neg"], unused_item),
        hist_neg_category=torch.where(paired, b["hist_neg_category"], 3),
        hist_category=torch.where(real, b["hist_category"], 2),  # other padding content, too
    )
    after = model.logits_and_auxiliary_loss(changed)[1]
    torch.testing.assert_close(after, before, rtol=0, atol=1e-6)
    after.backward()  # nor does any gradient reach the unused negative's row
    table, offsets = model.inputs.embedding.table.weight, model.inputs.embedding.offsets
    assert table.grad[offsets["item_id"] + unused_item].abs().sum() == 0
    assert table.grad[offsets["item_id"]].abs().sum() == 0  # nor the padding row
    # a paired negative is read
    moved = dict(b, hist_neg=torch.where(paired, 1 + b["hist_neg"] % 19, b["hist_neg"]))
    assert not torch.allclose(model.logits_and_auxiliary_loss(moved)[1], before)


@pytest.mark.parametrize("kind", KINDS)
def test_padding_never_leaks_and_behaviours_matter(kind):
    torch.manual_seed(0)
    model = DIEN(SCHEMA, DIENConfig(evolution=kind)).eval()
    b = left_padded()
    before = model(b)
    torch.testing.assert_close(model(history_padding_changed(b)), before, rtol=0, atol=1e-6)
    shift_padding_rows(model.inputs.embedding, "hist")  # the padding rows of the shared item and category tables
    shift_padding_rows(model.inputs.embedding, "hist_category", by=-5.0)
    torch.testing.assert_close(model(b), before, rtol=0, atol=1e-6)
    assert not torch.allclose(model(real_history_changed(b)), before)
    # the order of the behaviours matters (a recurrence, not a pooling): reverse the full rows
    reversed_rows = dict(b, hist=b["hist"].clone(), hist_category=b["hist_category"].clone())
    for name in ("hist", "hist_category"):
        reversed_rows[name][4:] = b[name][4:].flip(1)
    assert not torch.allclose(model(reversed_rows)[4:], before[4:])
    torch.testing.assert_close(model(reversed_rows)[:4], before[:4], rtol=0, atol=1e-6)


def test_config_fields_shape_the_model():
    model = DIEN(SCHEMA, DIENConfig(embed_dim=8, evolution="agru", mlp_dims=[32, 16], dropout=0.3))
    d = 2 * 8  # item and category
    assert model.extractor.gru.hidden_size == d and model.extractor.gru.input_size == d
    assert isinstance(model.evolution.cell, AGRUCell) and model.evolution.hidden_dim == d
    plain = 6 * 8 + 1  # user_id, gender, age_bucket, item_id, category, price_bucket; price
    assert model.mlp.net[0].in_features == plain + d
    assert [m.out_features for m in model.mlp.net if isinstance(m, nn.Linear)] == [32, 16, 1]
    assert [m.p for m in model.mlp.net if isinstance(m, nn.Dropout)] == [0.3, 0.3]
    assert isinstance(DIEN(SCHEMA, DIENConfig(evolution="aigru")).evolution.cell, AIGRUCell)
    assert isinstance(DIEN(SCHEMA, DIENConfig()).evolution.cell, AUGRUCell)
    assert DIENConfig().mlp_dims == [200, 80]


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"embed_dim": 0}, "embed_dim"),
        ({"evolution": "lstm"}, "evolution"),
        ({"aux_weight": -0.1}, "aux_weight"),
        ({"dropout": 1.0}, "dropout"),
        ({"mlp_dims": []}, "mlp_dims must not be empty"),
        ({"mlp_dims": [0]}, "positive sizes"),
        ({"groups": []}, "groups must not be empty"),
        ({"groups": ["user", "item"]}, "behavior"),
    ],
)
def test_bad_config_raises(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DIENConfig(**kwargs)


@pytest.mark.parametrize("kind", KINDS)
def test_onnx_parity(kind, tmp_path):
    torch.manual_seed(0)
    model = DIEN(SCHEMA, DIENConfig(evolution=kind)).eval()
    inputs = onnx_inputs(DIENConfig().groups, left_padded(seed=3))
    assert "hist_neg" not in inputs  # serving feeds no negatives
    check_onnx_parity(model, inputs, tmp_path / "model.onnx")
