"""Cross layers against hand-computed values on a 2-d input, and DCN-V2's configurations."""

import math

import pytest
import torch
import torch.nn.functional as F

from rechub_core.layers import CrossNet, CrossNetV2, LowRankMixtureCross
from rechub_core.models.ranking.dcnv2 import DCNV2, DCNV2Config
from tests.unit.test_models import SCHEMA, B, batch

X0 = torch.tensor([[1.0, 2.0]])  # (1, 2)


def _set(param: torch.nn.Parameter, value) -> None:
    with torch.no_grad():
        param.copy_(torch.tensor(value, dtype=param.dtype).reshape(param.shape))


def test_crossnet_v1_one_layer_by_hand():
    cross = CrossNet(2, num_layers=1)
    _set(cross.weight, [[1.0, -1.0]])
    _set(cross.bias, [[0.5, 0.5]])
    # x0 (x0·w) + b + x0 = [1, 2]·(-1) + [0.5, 0.5] + [1, 2]
    assert torch.allclose(cross(X0), torch.tensor([[0.5, 0.5]]))


def test_crossnet_v2_one_layer_by_hand():
    cross = CrossNetV2(2, num_layers=1)
    _set(cross.layers[0].weight, [[1.0, 2.0], [3.0, 4.0]])
    _set(cross.layers[0].bias, [0.5, -1.0])
    # W x0 + b = [5, 11] + [0.5, -1] = [5.5, 10]; x0 ⊙ that + x0 = [5.5, 20] + [1, 2]
    assert torch.allclose(cross(X0), torch.tensor([[6.5, 22.0]]))


def test_crossnet_v2_two_layers_by_hand():
    cross = CrossNetV2(2, num_layers=2)
    for layer in cross.layers:
        _set(layer.weight, [[1.0, 0.0], [0.0, 1.0]])
        _set(layer.bias, [0.0, 0.0])
    # x1 = x0 ⊙ x0 + x0 = [2, 6]; x2 = x0 ⊙ x1 + x1 = [2, 12] + [2, 6]
    assert torch.allclose(cross(X0), torch.tensor([[4.0, 18.0]]))


def _two_experts(activation="identity") -> LowRankMixtureCross:
    cross = LowRankMixtureCross(2, num_layers=1, rank=1, num_experts=2, activation=activation)
    _set(cross.down, [[[[1.0], [1.0]], [[1.0], [-1.0]]]])  # V_1 = [1, 1]^T, V_2 = [1, -1]^T
    _set(cross.up, [[[[2.0, -1.0]], [[1.0, 1.0]]]])  # U_1 = [2, -1]^T, U_2 = [1, 1]^T
    _set(cross.bias, [[0.0, 1.0]])
    _set(cross.gate, [[[0.0, math.log(3.0)], [0.0, 0.0]]])  # gate logits [0, ln 3]·x0 → [0, ln 3]
    return cross


def test_low_rank_single_expert_is_the_plain_low_rank_cross():
    cross = LowRankMixtureCross(2, num_layers=1, rank=1, num_experts=1)
    assert cross.gate is None and cross.mid is None
    _set(cross.down, [1.0, 1.0])
    _set(cross.up, [2.0, -1.0])
    _set(cross.bias, [0.0, 1.0])
    # V^T x0 = 3; U·3 + b = [6, -2]; x0 ⊙ that + x0 = [6, -4] + [1, 2]
    assert torch.allclose(cross(X0), torch.tensor([[7.0, -2.0]]))


def test_low_rank_mixture_of_two_experts_by_hand():
    # E_1 = x0 ⊙ ([6, -3] + b) = [6, -4]; E_2 = x0 ⊙ (-1·[1, 1] + b) = [-1, 0]
    # gates softmax([0, ln 3]) = [1/4, 3/4]
    expected = 0.25 * torch.tensor([6.0, -4.0]) + 0.75 * torch.tensor([-1.0, 0.0]) + X0
    assert torch.allclose(_two_experts()(X0), expected)
    assert torch.allclose(expected, torch.tensor([[1.75, 1.0]]))


def test_low_rank_tanh_experts_by_hand():
    cross = _two_experts("tanh")
    _set(cross.mid, [[[[1.0]], [[2.0]]]])  # C_1 = 1, C_2 = 2
    # E_i = x0 ⊙ (U_i tanh(C_i tanh(V_i^T x0)) + b)
    t1 = math.tanh(math.tanh(3.0))
    t2 = math.tanh(2.0 * math.tanh(-1.0))
    e1 = X0 * (t1 * torch.tensor([2.0, -1.0]) + torch.tensor([0.0, 1.0]))
    e2 = X0 * (t2 * torch.tensor([1.0, 1.0]) + torch.tensor([0.0, 1.0]))
    assert torch.allclose(cross(X0), 0.25 * e1 + 0.75 * e2 + X0)


@pytest.mark.parametrize("experts,activation", [(1, "identity"), (4, "identity"), (1, "tanh"), (4, "tanh")])
def test_low_rank_parameter_count(experts, activation):
    d, layers, r = 10, 3, 2
    cross = LowRankMixtureCross(d, layers, rank=r, num_experts=experts, activation=activation)
    per_expert = 2 * d * r + (r * r if activation == "tanh" else 0)  # V_i, U_i (and C_i)
    gate = d * experts if experts > 1 else 0
    expected = layers * (experts * per_expert + d + gate)  # + the layer's shared bias b_l
    assert sum(p.numel() for p in cross.parameters()) == expected
    # far fewer than the full-matrix cross's d² + d per layer at this rank
    assert sum(p.numel() for p in LowRankMixtureCross(d, layers, rank=r).parameters()) < sum(
        p.numel() for p in CrossNetV2(d, layers).parameters()
    )


@pytest.mark.parametrize(
    "cross",
    [
        lambda: CrossNet(6, 3),
        lambda: CrossNetV2(6, 3),
        lambda: LowRankMixtureCross(6, 3, rank=2),
        lambda: LowRankMixtureCross(6, 3, rank=2, num_experts=3),
        lambda: LowRankMixtureCross(6, 3, rank=2, num_experts=3, activation="tanh"),
    ],
    ids=["v1", "v2", "low_rank", "mixture", "mixture_tanh"],
)
def test_cross_shapes_and_finite_gradients(cross):
    torch.manual_seed(0)
    layer = cross()
    x0 = torch.randn(5, 6, requires_grad=True)
    out = layer(x0)
    assert out.shape == (5, 6)
    out.pow(2).mean().backward()
    assert torch.isfinite(x0.grad).all()
    for p in layer.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


def test_bad_activation_is_rejected():
    with pytest.raises(ValueError, match="activation"):
        LowRankMixtureCross(4, 1, rank=2, activation="relu")


@pytest.mark.parametrize(
    "config",
    [
        DCNV2Config(structure="stacked"),
        DCNV2Config(structure="parallel"),
        DCNV2Config(structure="stacked", low_rank=4),
        DCNV2Config(structure="parallel", low_rank=4, num_experts=3),
    ],
    ids=["stacked", "parallel", "stacked_low_rank", "parallel_mixture"],
)
def test_dcnv2_configurations_give_logits(config):
    torch.manual_seed(0)
    model = DCNV2(SCHEMA, config)
    b = batch()
    logits = model(b)
    assert logits.shape == (B,)
    F.binary_cross_entropy_with_logits(logits, b["click"].float()).backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_dcnv2_config_fields_pick_the_cross_network_and_structure():
    full = DCNV2(SCHEMA, DCNV2Config(num_cross_layers=2))
    assert isinstance(full.cross, CrossNetV2) and len(full.cross.layers) == 2
    mixture = DCNV2(SCHEMA, DCNV2Config(low_rank=3, num_experts=2))  # x0: 7 fields × 16 + 1 dense = 113
    assert isinstance(mixture.cross, LowRankMixtureCross) and mixture.cross.down.shape[1:] == (2, 113, 3)
    # x0 = 7 fields × embed 4 + 1 dense column; parallel concatenates it with the MLP's top layer
    parallel = DCNV2(SCHEMA, DCNV2Config(embed_dim=4, mlp_dims=[8]))
    stacked = DCNV2(SCHEMA, DCNV2Config(embed_dim=4, mlp_dims=[8], structure="stacked"))
    assert parallel.head.in_features == 29 + 8 and stacked.head.in_features == 8


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"num_experts": 2}, "num_experts > 1 needs low_rank"),
        ({"low_rank": 0}, "low_rank must be at least 1"),
        ({"num_experts": 0, "low_rank": 2}, "num_experts must be at least 1"),
        ({"num_cross_layers": 0}, "num_cross_layers"),
        ({"mlp_dims": []}, "mlp_dims must not be empty"),
        ({"groups": []}, "groups must not be empty"),
        ({"structure": "side_by_side"}, "structure"),
        ({"dropout": 1.0}, "dropout"),
    ],
)
def test_bad_dcnv2_config_raises(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DCNV2Config(**kwargs)
