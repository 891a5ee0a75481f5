"""AutoInt's interacting layer and EDCN's bridge and regulation modules against hand-computed values
on tiny inputs; both models' configurations, gradients, validation and ONNX parity."""

import doctest
import math

import pytest
import torch

import rechub_core.layers.bridge
import rechub_core.layers.interacting
import rechub_core.layers.regulation
import rechub_core.models.ranking.autoint
import rechub_core.models.ranking.edcn
from rechub_core.layers.bridge import BridgeModule
from rechub_core.layers.cross import CrossNet
from rechub_core.layers.interacting import InteractingLayer
from rechub_core.layers.regulation import RegulationModule
from rechub_core.models.ranking.autoint import AutoInt, AutoIntConfig
from rechub_core.models.ranking.edcn import EDCN, EDCNConfig
from tests.unit.checks import check_logits_and_gradients, check_onnx_parity, onnx_inputs
from tests.unit.test_models import SCHEMA, batch

E = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]])  # one row, two fields e_1 = [1, 0], e_2 = [0, 2]: (1, 2, 2)
I2 = [[1.0, 0.0], [0.0, 1.0]]


def _set(param: torch.nn.Parameter, value) -> None:
    with torch.no_grad():
        param.copy_(torch.as_tensor(value, dtype=param.dtype).reshape(param.shape))


def _softmax(*logits: float) -> list[float]:
    z = sum(math.exp(v) for v in logits)
    return [math.exp(v) / z for v in logits]


# ---------------------------------------------------------------- InteractingLayer


def _one_head(use_residual: bool, value=I2, residual=None) -> InteractingLayer:
    layer = InteractingLayer(2, attention_dim=2, num_heads=1, use_residual=use_residual)
    _set(layer.query.weight, I2)
    _set(layer.key.weight, I2)
    _set(layer.value.weight, value)
    if residual is not None:
        _set(layer.residual.weight, residual)
    return layer


def test_interacting_layer_one_head_with_residual_by_hand():
    # <q_m, k_k> = <e_m, e_k>: [[1, 0], [0, 4]]; softmax over the fields k of each row
    a11, a12 = _softmax(1.0, 0.0)
    a21, a22 = _softmax(0.0, 4.0)
    # ẽ_1 = a11 e_1 + a12 e_2 = [a11, 2 a12]; ẽ_2 = [a21, 2 a22]
    # W_Res = -I: ReLU(ẽ_1 - e_1) = ReLU([a11 - 1, 2 a12]); ReLU(ẽ_2 - e_2) = ReLU([a21, 2 a22 - 2])
    expected = torch.tensor([[[0.0, 2 * a12], [a21, 0.0]]])
    out = _one_head(True, residual=[[-1.0, 0.0], [0.0, -1.0]])(E)
    assert torch.allclose(out, expected, atol=1e-6)
    assert a11 - 1 < 0 and 2 * a22 - 2 < 0  # the ReLU did cut those two entries


def test_interacting_layer_without_residual_by_hand():
    a11, a12 = _softmax(1.0, 0.0)
    a21, a22 = _softmax(0.0, 4.0)
    # W_value = diag(1, -1): v_1 = [1, 0], v_2 = [0, -2]; ReLU(Σ_k α_mk v_k)
    expected = torch.tensor([[[a11, 0.0], [a21, 0.0]]])
    layer = _one_head(False, value=[[1.0, 0.0], [0.0, -1.0]])
    assert layer.residual is None
    assert torch.allclose(layer(E), expected, atol=1e-6)


def test_interacting_layer_heads_are_concatenated_per_field():
    torch.manual_seed(0)
    two = InteractingLayer(3, attention_dim=2, num_heads=2)
    heads = [InteractingLayer(3, attention_dim=2, num_heads=1) for _ in range(2)]
    for h, single in enumerate(heads):
        for name in ("query", "key", "value", "residual"):
            _set(getattr(single, name).weight, getattr(two, name).weight[2 * h : 2 * h + 2])
    x = torch.randn(4, 5, 3)
    assert torch.allclose(two(x), torch.cat([single(x) for single in heads], dim=-1), atol=1e-6)


def test_interacting_layer_is_permutation_equivariant_over_fields():
    torch.manual_seed(0)
    layer = InteractingLayer(4, attention_dim=3, num_heads=2)
    x = torch.randn(2, 5, 4)
    perm = torch.tensor([3, 0, 4, 1, 2])
    assert torch.allclose(layer(x[:, perm]), layer(x)[:, perm], atol=1e-6)


# ---------------------------------------------------------------- BridgeModule

X = torch.tensor([[1.0, 2.0]])
H = torch.tensor([[3.0, -1.0]])


@pytest.mark.parametrize(
    "kind,expected",
    [("pointwise_addition", [[4.0, 1.0]]), ("hadamard_product", [[3.0, -2.0]])],
)
def test_bridge_parameter_free_kinds_by_hand(kind, expected):
    bridge = BridgeModule(2, kind)
    assert not list(bridge.parameters())
    assert torch.allclose(bridge(X, H), torch.tensor(expected))


def test_bridge_concatenation_by_hand():
    bridge = BridgeModule(2, "concatenation")
    linear = bridge.fuse[0]
    _set(linear.weight, [[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0]])
    _set(linear.bias, [0.0, -2.0])
    # W [x ‖ h] + b = [1 + 3, 2 - 1 - 2] = [4, -1]; ReLU → [4, 0]
    assert torch.allclose(bridge(X, H), torch.tensor([[4.0, 0.0]]))


def test_bridge_attention_pooling_by_hand():
    bridge = BridgeModule(2, "attention_pooling")
    for attend, scale in ((bridge.attend_x, 1.0), (bridge.attend_h, 2.0)):
        _set(attend[0].weight, I2)  # W
        _set(attend[0].bias, [0.0, 0.0])  # b
        _set(attend[2].weight, [[scale, 0.0], [0.0, scale]])  # P
    # a_x = softmax(ReLU([1, 2])) = softmax([1, 2]); a_h = softmax(2 ReLU([3, -1])) = softmax([6, 0])
    ax, ah = _softmax(1.0, 2.0), _softmax(6.0, 0.0)
    expected = torch.tensor([[ax[0] * 1 + ah[0] * 3, ax[1] * 2 + ah[1] * -1]])
    assert torch.allclose(bridge(X, H), expected, atol=1e-6)


def test_bridge_rejects_unknown_kind():
    with pytest.raises(ValueError, match="bridge must be one of"):
        BridgeModule(2, "gated_sum")


# ---------------------------------------------------------------- RegulationModule


def test_regulation_starts_uniform_and_sums_to_one_over_fields():
    module = RegulationModule(4, 3, temperature=1.0)
    assert torch.allclose(module.field_weights(), torch.full((2, 4), 0.25))
    _set(module.gates, torch.randn(2, 4, generator=torch.Generator().manual_seed(0)))
    assert torch.allclose(module.field_weights().sum(dim=1), torch.ones(2))


def test_regulation_weights_by_hand_repeated_over_each_fields_dims():
    module = RegulationModule(3, 2, temperature=1.0)
    _set(module.gates, [[0.0, math.log(2.0), math.log(5.0)], [1.0, 1.0, 1.0]])
    # cross: softmax([0, ln 2, ln 5]) = [1, 2, 5] / 8; deep: uniform 1/3; layout field-major (F, D) flattened
    cross, deep = module(torch.ones(1, 6))
    assert torch.allclose(cross, torch.tensor([[1.0, 1.0, 2.0, 2.0, 5.0, 5.0]]) / 8)
    assert torch.allclose(deep, torch.full((1, 6), 1 / 3))
    x = torch.arange(1.0, 7.0).reshape(1, 6)
    assert torch.allclose(module(x)[0], x * torch.tensor([1.0, 1.0, 2.0, 2.0, 5.0, 5.0]) / 8)


def test_regulation_temperature_sharpens_the_weights():
    gates = [[0.0, math.log(2.0), math.log(5.0)]] * 2
    weights = {}
    for tau in (0.5, 1.0, 2.0):
        module = RegulationModule(3, 2, temperature=tau)
        _set(module.gates, gates)
        weights[tau] = module.field_weights()[0]
    # τ = 0.5: softmax(2 g) = [1, 4, 25] / 30
    assert torch.allclose(weights[0.5], torch.tensor([1.0, 4.0, 25.0]) / 30)
    assert weights[0.5].max() > weights[1.0].max() > weights[2.0].max()


def test_regulation_rejects_non_positive_temperature():
    with pytest.raises(ValueError, match="temperature"):
        RegulationModule(3, 2, temperature=0.0)


# ---------------------------------------------------------------- models

AUTOINT_CONFIGS = {
    "autoint": AutoIntConfig(),
    "no_residual": AutoIntConfig(use_residual=False),
    "one_layer_four_heads": AutoIntConfig(num_layers=1, num_heads=4, attention_dim=8),
    "autoint_plus": AutoIntConfig(mlp_dims=[32, 16], dropout=0.1),
}
EDCN_CONFIGS = {
    bridge: EDCNConfig(bridge=bridge)
    for bridge in ("pointwise_addition", "hadamard_product", "concatenation", "attention_pooling")
} | {"one_layer_sharp": EDCNConfig(num_layers=1, temperature=0.1, dropout=0.0)}
MODELS = [(AutoInt, c) for c in AUTOINT_CONFIGS.values()] + [(EDCN, c) for c in EDCN_CONFIGS.values()]
IDS = list(AUTOINT_CONFIGS) + [f"edcn_{k}" for k in EDCN_CONFIGS]
NUM_FIELDS = 8  # SCHEMA: 7 sparse/sequence fields + 1 dense field


@pytest.mark.parametrize("model_cls,config", MODELS, ids=IDS)
def test_logits_loss_and_gradients_reach_every_parameter(model_cls, config):
    torch.manual_seed(0)
    check_logits_and_gradients(model_cls(SCHEMA, config))


def test_autoint_config_fields_shape_the_network():
    plain = AutoInt(SCHEMA, AutoIntConfig())
    assert len(plain.interacting) == 3 and plain.deep is None
    assert all(layer.residual is not None for layer in plain.interacting)
    assert plain.head.in_features == NUM_FIELDS * 2 * 32  # M fields × H heads × d'
    small = AutoInt(SCHEMA, AutoIntConfig(embed_dim=4, attention_dim=3, num_heads=5, num_layers=2, use_residual=False))
    assert small.interacting[0].query.in_features == 4 and small.interacting[1].query.in_features == 15
    assert small.head.in_features == NUM_FIELDS * 15
    assert all(layer.residual is None for layer in small.interacting)
    plus = AutoInt(SCHEMA, AutoIntConfig(embed_dim=4, mlp_dims=[8], dropout=0.2))
    linears = [m for m in plus.deep.modules() if isinstance(m, torch.nn.Linear)]
    assert linears[0].in_features == NUM_FIELDS * 4 and linears[-1].out_features == 1
    assert any(isinstance(m, torch.nn.Dropout) and m.p == 0.2 for m in plus.deep.modules())


def test_autoint_plus_adds_the_mlp_logit():
    torch.manual_seed(0)
    model = AutoInt(SCHEMA, AutoIntConfig(mlp_dims=[8])).eval()
    b = batch()
    fields = model.embedding(b)
    expected = model.head(model.interacting(fields).flatten(1)).squeeze(-1) + model.deep(fields.flatten(1)).squeeze(-1)
    assert torch.allclose(model(b), expected)


def test_edcn_config_fields_shape_the_network():
    model = EDCN(SCHEMA, EDCNConfig(embed_dim=4, num_layers=2, bridge="concatenation", temperature=0.3, dropout=0.2))
    d = NUM_FIELDS * 4  # cross and deep keep the field-stacked width
    assert model.cross_weight.shape == (2, d) and len(model.deep) == 2 and len(model.bridge) == 2
    assert all(b.kind == "concatenation" for b in model.bridge)
    assert all(r.temperature == 0.3 and r.gates.shape == (2, NUM_FIELDS) for r in model.regulation)
    assert all(mlp.net[0].in_features == d and mlp.net[0].out_features == d for mlp in model.deep)
    assert all(isinstance(mlp.net[2], torch.nn.Dropout) and mlp.net[2].p == 0.2 for mlp in model.deep)
    assert model.head.in_features == 3 * d  # [x_L ‖ h_L ‖ f_L]


def _bridge_inputs(model: EDCN, b: dict) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The (cross, deep) outputs every bridge module receives in one forward pass."""
    seen = []
    hooks = [m.register_forward_hook(lambda _m, args, _out: seen.append(args)) for m in model.bridge]
    model(b)
    for h in hooks:
        h.remove()
    return seen


@torch.no_grad()
def test_edcn_cross_layers_are_dcn_vector_crosses_on_the_regulated_inputs():
    torch.manual_seed(0)
    model = EDCN(SCHEMA, EDCNConfig(num_layers=2, bridge="pointwise_addition")).eval()
    with torch.no_grad():
        model.regulation[0].gates.normal_()
        model.regulation[1].gates.normal_()
        model.cross_bias.normal_()
    b = batch()
    (x1, h1), (x2, h2) = _bridge_inputs(model, b)
    x_in, h_in = model.regulation[0](model.embedding(b).flatten(1))
    # first layer: x0 = x̃_0, so it is exactly DCN's one-layer CrossNet on the gated input
    cross = CrossNet(x_in.shape[1], num_layers=1)
    _set(cross.weight, model.cross_weight[0])
    _set(cross.bias, model.cross_bias[0])
    assert torch.allclose(x1, cross(x_in), atol=1e-6)
    assert torch.allclose(h1, torch.relu(model.deep[0].net[0](h_in)), atol=1e-6)
    # second layer: input is the regulated bridge output f_1 = x_1 + h_1, crossed with the first layer's x0
    x_in2, h_in2 = model.regulation[1](x1 + h1)
    expected = x_in * (x_in2 @ model.cross_weight[1]).unsqueeze(-1) + model.cross_bias[1] + x_in2
    assert torch.allclose(x2, expected, atol=1e-5)
    assert torch.allclose(h2, torch.relu(model.deep[1].net[0](h_in2)), atol=1e-6)
    # the logit reads the last cross, deep and bridge outputs
    assert torch.allclose(model(b), model.head(torch.cat([x2, h2, x2 + h2], dim=1)).squeeze(-1), atol=1e-5)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"embed_dim": 0}, "embed_dim"),
        ({"attention_dim": 0}, "attention_dim"),
        ({"num_heads": 0}, "num_heads"),
        ({"num_layers": 0}, "num_layers"),
        ({"mlp_dims": [8, 0]}, "mlp_dims must hold positive sizes"),
        ({"dropout": 1.0, "mlp_dims": [8]}, "dropout must be in"),
        ({"dropout": 0.1}, "dropout > 0 needs mlp_dims"),
        ({"groups": []}, "groups must not be empty"),
    ],
)
def test_bad_autoint_config_raises(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AutoIntConfig(**kwargs)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"embed_dim": 0}, "embed_dim"),
        ({"num_layers": 0}, "num_layers"),
        ({"bridge": "gated_sum"}, "bridge must be one of"),
        ({"temperature": 0.0}, "temperature must be positive"),
        ({"dropout": -0.1}, "dropout must be in"),
        ({"groups": []}, "groups must not be empty"),
    ],
)
def test_bad_edcn_config_raises(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EDCNConfig(**kwargs)


@pytest.mark.parametrize("model_cls,config", MODELS, ids=IDS)
def test_onnx_parity(model_cls, config, tmp_path):
    torch.manual_seed(0)
    model = model_cls(SCHEMA, config).eval()
    check_onnx_parity(model, onnx_inputs(), tmp_path / "model.onnx", output_name="logit")


@pytest.mark.parametrize(
    "module",
    [
        rechub_core.layers.interacting,
        rechub_core.layers.bridge,
        rechub_core.layers.regulation,
        rechub_core.models.ranking.autoint,
        rechub_core.models.ranking.edcn,
    ],
)
def test_docstring_examples(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
