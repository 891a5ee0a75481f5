"""DIN's Dice, activation unit and mini-batch aware L2 by hand; DIN and its base model's shapes, gradients,
pooling, padding, configurations and ONNX parity."""

import math

import pytest
import torch
import torch.nn.functional as F

from rechub_core.layers.activation_unit import ActivationUnitAttention
from rechub_core.layers.dice import Dice, activate, activation
from rechub_core.models.ranking.din import DIN, DINConfig
from rechub_core.models.ranking.din_base import DINBase, DINBaseConfig, MiniBatchAwareL2, din_mlp
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


def _set(param: torch.Tensor, value) -> None:
    with torch.no_grad():
        param.copy_(torch.as_tensor(value, dtype=param.dtype).reshape(param.shape))


def _dice(s: float, mean: float, var: float, alpha: float, eps: float = 1e-8) -> float:
    p = 1 / (1 + math.exp(-(s - mean) / math.sqrt(var + eps)))
    return p * s + (1 - p) * alpha * s


# --- Dice ------------------------------------------------------------------------------------

X = torch.tensor([[1.0, -2.0], [3.0, 0.0], [-1.0, 4.0]])  # (3, 2)
# channel 0: mean 1, variance (0 + 4 + 4) / 3; channel 1: mean 2/3, variance (64 + 4 + 100) / 27
MEANS, VARS = [1.0, 2.0 / 3.0], [8.0 / 3.0, 168.0 / 27.0]


def test_dice_in_training_uses_the_batch_statistics():
    dice = Dice(2)
    _set(dice.alpha, [0.1, 0.5])
    out = dice(X)
    expected = [[_dice(X[n, c].item(), MEANS[c], VARS[c], [0.1, 0.5][c]) for c in range(2)] for n in range(3)]
    torch.testing.assert_close(out, torch.tensor(expected), rtol=0, atol=1e-6)
    # the moving averages took one step (momentum 0.1) from mean 0, variance 1
    torch.testing.assert_close(dice.running_mean, 0.1 * torch.tensor(MEANS))
    torch.testing.assert_close(dice.running_var, 0.9 + 0.1 * torch.tensor(VARS))
    # a row's output depends on the rest of the batch
    assert not torch.allclose(dice(X[:2])[0], out[0])


def test_dice_in_eval_uses_the_moving_averages():
    dice = Dice(2).eval()
    _set(dice.alpha, [0.1, 0.5])
    _set(dice.running_mean, [0.5, -1.0])
    _set(dice.running_var, [4.0, 0.25])
    out = dice(X)
    expected = [[_dice(X[n, c].item(), [0.5, -1.0][c], [4.0, 0.25][c], [0.1, 0.5][c]) for c in range(2)] for n in range(3)]
    torch.testing.assert_close(out, torch.tensor(expected), rtol=0, atol=1e-6)
    torch.testing.assert_close(dice(X[1:2]), out[1:2])  # row by row, as served
    assert dice.running_mean.tolist() == [0.5, -1.0]  # eval does not move them


def test_dice_with_zero_mean_and_variance_is_prelu():
    dice = Dice(2).eval()
    _set(dice.running_var, [0.0, 0.0])
    torch.testing.assert_close(dice(X), F.prelu(X, torch.tensor([0.25, 0.25])))


def test_dice_statistics_run_over_real_entries_only():
    dice = Dice(1)
    s = torch.tensor([[[100.0], [1.0], [3.0]], [[-50.0], [-50.0], [2.0]]])  # (2, 3, 1)
    mask = torch.tensor([[False, True, True], [False, False, True]])
    out = dice(s, mask)
    # real entries 1, 3, 2: mean 2, variance 2/3
    for b, l in [(0, 1), (0, 2), (1, 2)]:
        assert out[b, l, 0].item() == pytest.approx(_dice(s[b, l, 0].item(), 2.0, 2.0 / 3.0, 0.25), abs=1e-6)
    assert out[0, 0, 0].item() == pytest.approx(_dice(100.0, 2.0, 2.0 / 3.0, 0.25), abs=1e-4)  # transformed alike
    torch.testing.assert_close(dice.running_mean, torch.tensor([0.2]))
    # without the mask the padding's values count and the real outputs change
    assert not torch.allclose(Dice(1)(s)[mask], out[mask])
    # a batch with nothing real leaves the moving averages alone
    dice(s, torch.zeros_like(mask))
    torch.testing.assert_close(dice.running_mean, torch.tensor([0.2]))


def test_activation_choices():
    assert isinstance(activation("dice", 3), Dice)
    prelu = activation("prelu", 3)
    assert isinstance(prelu, torch.nn.PReLU) and prelu.weight.shape == (3,)
    _set(prelu.weight, [0.1, 0.2, 0.3])
    x = -torch.ones(2, 4, 3)  # PReLU per channel along the last dimension, whatever the leading ones
    torch.testing.assert_close(activate(prelu, x), -torch.tensor([0.1, 0.2, 0.3]).expand(2, 4, 3))
    with pytest.raises(ValueError, match="activation"):
        activation("relu", 3)


# --- the activation unit ------------------------------------------------------------------------


def _hand_unit() -> ActivationUnitAttention:
    """D = 1, one hidden unit: s = e + (e - t) + e·t, PReLU slope 0.5, a = 2 f(s) + 1."""
    unit = ActivationUnitAttention(1, [1], "prelu")
    _set(unit.hidden[0].weight, [1.0, 0.0, 1.0, 1.0])  # over [e, t, e - t, e ⊙ t]
    _set(unit.hidden[0].bias, [0.0])
    _set(unit.activations[0].weight, [0.5])
    _set(unit.out.weight, [2.0])
    _set(unit.out.bias, [1.0])
    return unit


def test_activation_unit_by_hand():
    unit = _hand_unit()
    target = torch.tensor([[2.0], [2.0]])
    behaviors = torch.tensor([[[9.0], [1.0], [-3.0]], [[5.0], [5.0], [5.0]]])  # (2, 3, 1)
    mask = torch.tensor([[False, True, True], [False, False, False]])  # row 1: no real behaviour
    # e = 1: s = 1 - 1 + 2 = 2, a = 2·2 + 1 = 5; e = -3: s = -3 - 5 - 6 = -14, f = -7, a = -13
    weights = unit.weights(target, behaviors, mask)
    assert weights.tolist() == [[0.0, 5.0, -13.0], [0.0, 0.0, 0.0]]
    assert weights[0].sum() != 1.0  # not normalised
    # Σ a_j e_j = 5·1 + (-13)(-3) = 44; the empty row pools to 0
    assert unit(target, behaviors, mask).tolist() == [[44.0], [0.0]]


def test_activation_unit_with_dice_matches_the_formula_over_real_behaviours():
    torch.manual_seed(0)
    unit = ActivationUnitAttention(3, [4], "dice")
    target, behaviors = torch.randn(2, 3), torch.randn(2, 5, 3)
    mask = torch.tensor([[0, 0, 1, 1, 1], [0, 1, 1, 1, 1]]).bool()
    weights = unit.weights(target, behaviors, mask)
    # by hand: the hidden layer at the 7 real positions, normalised with their own statistics
    t = target.unsqueeze(1).expand_as(behaviors)
    s = unit.hidden[0](torch.cat([behaviors, t, behaviors - t, behaviors * t], -1))[mask]  # (7, 4)
    mean, var = s.mean(0), s.var(0, unbiased=False)
    p = torch.sigmoid((s - mean) / torch.sqrt(var + 1e-8))
    f = p * s + (1 - p) * unit.activations[0].alpha * s
    torch.testing.assert_close(weights[mask], unit.out(f).squeeze(-1))
    assert (weights[~mask] == 0).all()
    # padding behaviours change neither the weights (their statistics) nor the pooled output
    noisy = torch.where(mask.unsqueeze(-1), behaviors, 50 * torch.randn(2, 5, 3))
    torch.testing.assert_close(unit.weights(target, noisy, mask), weights)
    pooled = unit(target, noisy, mask)
    torch.testing.assert_close(pooled, (weights.unsqueeze(-1) * behaviors).sum(1))


# --- mini-batch aware L2 -------------------------------------------------------------------------


def test_mini_batch_aware_l2_by_hand():
    table = torch.nn.Embedding(5, 2, sparse=True)
    _set(table.weight, [[9.0, 9.0], [1.0, 0.0], [1.0, 1.0], [0.0, 2.0], [3.0, 0.0]])  # ||w||² = 162, 1, 2, 4, 9
    reg = MiniBatchAwareL2(5, weight=0.5)
    rows = torch.tensor([[1, 2, 2], [1, 3, 0]])
    real = torch.tensor([[True, True, True], [True, True, False]])
    # batch 1: samples holding row 1: 2, row 2: 1 (twice in one sample), row 3: 1; row 0 is padding
    loss = reg(table, rows, real)
    assert loss.item() == pytest.approx(0.5 * (1 / 2 + 2 / 1 + 4 / 1))
    loss.backward()
    grad = table.weight.grad.coalesce()
    assert grad.is_sparse and sorted(grad.indices()[0].tolist()) == [1, 2, 3]  # only the rows used
    # batch 2: row 1 held by 3 samples over 2 batches (q = 1.5), row 4 by 1 (q = 0.5)
    loss = reg(table, torch.tensor([[1], [4]]), torch.ones(2, 1, dtype=torch.bool))
    assert loss.item() == pytest.approx(0.5 * (1 / 1.5 + 9 / 0.5))
    # eval reads the counts (this batch included, as a third) without moving them: q = 4/3 and 2/3, twice
    reg.eval()
    again = [reg(table, torch.tensor([[1], [4]]), torch.ones(2, 1, dtype=torch.bool)).item() for _ in range(2)]
    assert again[0] == again[1] == pytest.approx(0.5 * (1 / (4 / 3) + 9 / (2 / 3)))


# --- the models ----------------------------------------------------------------------------------

CONFIGS = [
    DINBaseConfig(),
    DINBaseConfig(activation="dice", l2_weight=0.01, dropout=0.2, embed_dim=4, mlp_dims=[8]),
    DINConfig(),
    DINConfig(activation="prelu"),
    DINConfig(attention_dims=[8, 4], l2_weight=0.01, dropout=0.1),
]
IDS = ["base", "base_dice_l2", "din", "din_prelu", "din_deep_unit_l2"]


def _build(config):
    return (DIN if isinstance(config, DINConfig) else DINBase)(SCHEMA, config)


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_shapes_loss_and_gradients(config):
    torch.manual_seed(0)
    model = _build(config)
    b = batch()
    logits, auxiliary = model.logits_and_auxiliary_loss(b)
    assert logits.shape == (B,)
    if config.l2_weight:
        assert auxiliary.item() > 0
    else:
        assert auxiliary == 0.0
    check_loss_reaches_every_parameter(model, b, logits, auxiliary)
    model.eval()
    torch.testing.assert_close(model(b), model.logits_and_auxiliary_loss(b)[0])


def test_config_fields_shape_the_models():
    base = DINBase(SCHEMA, DINBaseConfig(embed_dim=4, mlp_dims=[16, 8]))
    plain = 6 * 4 + 1  # user_id, gender, age_bucket, item_id, category, price_bucket; price
    assert base.mlp.net[0].in_features == plain + 2 * 4  # and the pooled behaviours (item, category)
    assert [m.out_features for m in base.mlp.net if isinstance(m, torch.nn.Linear)] == [16, 8, 1]
    assert [type(m) for m in base.mlp.net if not isinstance(m, torch.nn.Linear)] == [torch.nn.PReLU] * 2
    assert base.regularizer is None and not hasattr(base, "attention")
    assert [type(m) for m in din_mlp(3, [4], "dice", 0.5).net] == [torch.nn.Linear, Dice, torch.nn.Dropout, torch.nn.Linear]
    din = DIN(SCHEMA, DINConfig(embed_dim=4, attention_dims=[6, 5], l2_weight=0.1))
    assert [m.out_features for m in din.attention.hidden] == [6, 5] and din.attention.hidden[0].in_features == 4 * 8
    assert all(isinstance(m, Dice) for m in [*din.attention.activations, din.mlp.net[1], din.mlp.net[3]])
    assert isinstance(din.regularizer, MiniBatchAwareL2) and din.regularizer.weight == 0.1
    prelu = DIN(SCHEMA, DINConfig(activation="prelu"))
    assert all(isinstance(m, torch.nn.PReLU) for m in [*prelu.attention.activations, prelu.mlp.net[1]])
    assert DINConfig().attention_dims == [36] and DINConfig().mlp_dims == [200, 80] and DINConfig().embed_dim == 12


def test_base_model_sum_pools_and_din_weights_by_the_activation_unit():
    torch.manual_seed(0)
    b = batch()
    base = DINBase(SCHEMA, DINBaseConfig()).eval()
    behaviors, mask = base.inputs.sequence(b)
    emb = base.inputs.embedding
    row = 2
    by_hand = sum(
        torch.cat([emb.lookup("hist", b["hist"][row, j]), emb.lookup("hist_category", b["hist_category"][row, j])])
        for j in range(5) if b["hist"][row, j] > 0
    )
    torch.testing.assert_close(base.interest(b, behaviors, mask)[row], by_hand)
    din = DIN(SCHEMA, DINConfig()).eval()
    behaviors, mask = din.inputs.sequence(b)
    target = din.inputs.target(b)
    weights = din.attention.weights(target, behaviors, mask)
    torch.testing.assert_close(din.interest(b, behaviors, mask), (weights.unsqueeze(-1) * behaviors).sum(1))
    # DIN's interest depends on the candidate; the base model's does not
    other = dict(b, item_id=1 + b["item_id"] % 20)
    assert not torch.allclose(din.interest(other, behaviors, mask), din.interest(b, behaviors, mask))
    torch.testing.assert_close(base.interest(other, behaviors, mask), base.interest(b, behaviors, mask))


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_padding_never_leaks(config, train):
    torch.manual_seed(0)
    model = _build(config).train(train)
    if config.dropout:
        for m in model.modules():
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0
    b = batch()
    before = model(b)
    # the padding row of the shared item table, and the other columns at padding (row 0 is all padding)
    shift_padding_rows(model.inputs.embedding, "hist")
    torch.testing.assert_close(model(history_padding_changed(b)), before, rtol=0, atol=1e-6)
    assert not torch.allclose(model(real_history_changed(b)), before)


def test_l2_weight_scales_the_auxiliary_loss():
    torch.manual_seed(0)
    b = batch()
    one = check_auxiliary_loss_scales(lambda w: DIN(SCHEMA, DINConfig(l2_weight=w)), 2.0, b)
    rows, real = one.embedding_rows(b)
    emb = one.inputs.embedding
    assert rows.shape == (B, 6 + 2 + 2 * 5)  # six plain sparse fields, the target's two attributes, hist twice
    assert not real[0, 8:].any() and real[:, :8].all()  # row 0's history is all padding
    assert (rows[:, 8:13] - emb.offsets["hist"] == b["hist"]).all()


@pytest.mark.parametrize(
    "cls,kwargs,message",
    [
        (DINBaseConfig, {"embed_dim": 0}, "embed_dim"),
        (DINBaseConfig, {"mlp_dims": []}, "mlp_dims must not be empty"),
        (DINBaseConfig, {"mlp_dims": [0]}, "mlp_dims must hold positive sizes"),
        (DINBaseConfig, {"groups": []}, "groups must not be empty"),
        (DINBaseConfig, {"activation": "relu"}, "activation"),
        (DINBaseConfig, {"dropout": 1.0}, "dropout"),
        (DINBaseConfig, {"l2_weight": -0.1}, "l2_weight"),
        (DINConfig, {"attention_dims": []}, "attention_dims must not be empty"),
        (DINConfig, {"attention_dims": [36, 0]}, "attention_dims must hold positive sizes"),
        (DINConfig, {"activation": "sigmoid"}, "activation"),
        (DINConfig, {"l2_weight": float("nan")}, "l2_weight"),
    ],
)
def test_bad_config_raises(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(**kwargs)


def test_needs_the_behaviour_group():
    with pytest.raises(ValueError, match="hist_category"):
        DIN(SCHEMA, DINConfig(groups=["user", "item"]))


# --- ONNX ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_onnx_parity(config, tmp_path):
    torch.manual_seed(0)
    model = _build(config)
    model(batch(seed=1))  # one training pass, so Dice's moving averages are not at their start
    model.eval()
    half, out = check_onnx_parity(model, onnx_inputs(config.groups), tmp_path / "model.onnx")
    torch.testing.assert_close(torch.from_numpy(out), model(half), rtol=0, atol=1e-5)
