"""AFM's attentional pair pooling, FiBiNET's SENET and bilinear layers against hand-computed values
on three 2-d fields, and both models' configurations, gradients and ONNX export."""

import math

import pytest
import torch

from rechub_core.features import Schema, SparseFeature
from rechub_core.layers.bilinear import BilinearInteraction
from rechub_core.layers.pair_attention import AttentionalPairPooling
from rechub_core.layers.senet import SENET
from rechub_core.models.ranking.afm import AFM, AFMConfig
from rechub_core.models.ranking.fibinet import FiBiNET, FiBiNETConfig
from tests.unit.checks import check_logits_and_gradients, check_onnx_parity, onnx_inputs
from tests.unit.test_models import SCHEMA, batch

# v_0, v_1, v_2 of one example: (1, 3, 2)
FIELDS = torch.tensor([[[1.0, 2.0], [3.0, -1.0], [0.5, 1.0]]])
# v_0 ⊙ v_1, v_0 ⊙ v_2, v_1 ⊙ v_2
PAIRS = torch.tensor([[3.0, -2.0], [0.5, 2.0], [1.5, -1.0]])
NUM_FIELDS = len(SCHEMA.features("user", "item"))  # 8: six sparse, one sequence, one dense
BILINEAR_TYPES = ["field_all", "field_each", "field_interaction"]


def _set(param: torch.nn.Parameter, value) -> None:
    with torch.no_grad():
        param.copy_(torch.tensor(value, dtype=param.dtype).reshape(param.shape))


# --- AttentionalPairPooling ---------------------------------------------------------------------


def _pooling() -> AttentionalPairPooling:
    pooling = AttentionalPairPooling(num_fields=3, embed_dim=2, attention_dim=2)
    _set(pooling.attention[0].weight, [[1.0, 0.0], [0.0, 1.0]])  # W = I
    _set(pooling.attention[0].bias, [0.0, 0.5])  # b
    _set(pooling.attention[2].weight, [[1.0, 2.0]])  # h
    return pooling


def test_pair_pooling_enumerates_each_pair_once():
    pooling = _pooling()
    assert pooling.rows.tolist() == [0, 0, 1] and pooling.cols.tolist() == [1, 2, 2]
    assert "rows" not in pooling.state_dict()  # derived from num_fields, not a weight
    assert torch.equal(pooling.interactions(FIELDS)[0], PAIRS)


def test_pair_pooling_attention_is_a_softmax_over_pairs_by_hand():
    # h^T ReLU(W x + b): ReLU([3, -1.5]) → 3; ReLU([0.5, 2.5]) → 0.5 + 5 = 5.5; ReLU([1.5, -0.5]) → 1.5
    scores = [3.0, 5.5, 1.5]
    expected = torch.tensor([math.exp(s) for s in scores]) / sum(math.exp(s) for s in scores)
    weights = _pooling().weights(PAIRS.unsqueeze(0))
    assert torch.allclose(weights[0], expected)
    assert torch.allclose(weights.sum(dim=1), torch.ones(1))


def test_pair_pooling_output_is_the_weighted_sum_by_hand():
    scores = [3.0, 5.5, 1.5]
    total = sum(math.exp(s) for s in scores)
    expected = sum(math.exp(s) / total * PAIRS[k] for k, s in enumerate(scores))
    assert torch.allclose(_pooling()(FIELDS), expected.unsqueeze(0))
    # with h = 0 every pair weighs 1/3: the attention-free AFM (Σ v_i ⊙ v_j) / 3
    pooling = _pooling()
    _set(pooling.attention[2].weight, [[0.0, 0.0]])
    assert torch.allclose(pooling(FIELDS), PAIRS.mean(dim=0, keepdim=True))


def test_pair_pooling_needs_two_fields():
    with pytest.raises(ValueError, match="at least 2 fields"):
        AttentionalPairPooling(num_fields=1, embed_dim=2, attention_dim=2)


# --- SENET --------------------------------------------------------------------------------------


def test_senet_by_hand():
    senet = SENET(num_fields=3, reduction_ratio=3)  # one bottleneck unit
    _set(senet.excitation[0].weight, [[1.0, -1.0, 2.0]])  # W_1: (1, 3)
    _set(senet.excitation[2].weight, [[1.0], [-2.0], [0.5]])  # W_2: (3, 1)
    fields = torch.tensor([[[1.0, 3.0], [4.0, 0.0], [-1.0, 2.0]]])
    # squeeze (mean): z = [2, 2, 0.5]; W_1 z = 1 → ReLU 1; W_2·1 = [1, -2, 0.5] → ReLU [1, 0, 0.5]
    assert torch.allclose(senet.importance(fields), torch.tensor([[1.0, 0.0, 0.5]]))
    assert torch.allclose(senet(fields), torch.tensor([[[1.0, 3.0], [0.0, 0.0], [-0.5, 1.0]]]))


@pytest.mark.parametrize("num_fields,ratio,hidden", [(6, 2, 3), (6, 3, 2), (2, 3, 1), (9, 1, 9)])
def test_senet_bottleneck_follows_the_reduction_ratio(num_fields, ratio, hidden):
    senet = SENET(num_fields, ratio)
    assert senet.excitation[0].weight.shape == (hidden, num_fields)
    assert senet.excitation[2].weight.shape == (num_fields, hidden)
    assert all(layer.bias is None for layer in (senet.excitation[0], senet.excitation[2]))


# --- BilinearInteraction ------------------------------------------------------------------------

W_A = [[1.0, 2.0], [0.0, 1.0]]
SWAP = [[0.0, 1.0], [1.0, 0.0]]
EYE = [[1.0, 0.0], [0.0, 1.0]]


@pytest.mark.parametrize(
    "bilinear_type,weights,expected",
    [
        # v_0 W = [1, 4], v_1 W = [3, 5]: pairs [1, 4] ⊙ v_1, [1, 4] ⊙ v_2, [3, 5] ⊙ v_2
        ("field_all", [W_A], [[3.0, -4.0], [0.5, 4.0], [1.5, 5.0]]),
        # W_0 = W_A, W_1 = SWAP: v_1 W_1 = [-1, 3], so only the pair (1, 2) changes
        ("field_each", [W_A, SWAP], [[3.0, -4.0], [0.5, 4.0], [-0.5, 3.0]]),
        # W_01 = I, W_02 = 2 I, W_12 = SWAP
        ("field_interaction", [EYE, [[2.0, 0.0], [0.0, 2.0]], SWAP], [[3.0, -2.0], [1.0, 4.0], [-0.5, 3.0]]),
    ],
)
def test_bilinear_types_by_hand(bilinear_type, weights, expected):
    layer = BilinearInteraction(num_fields=3, embed_dim=2, bilinear_type=bilinear_type)
    assert layer.weight.shape == (len(weights), 2, 2)
    _set(layer.weight, weights)
    assert torch.allclose(layer(FIELDS), torch.tensor([expected]))


@pytest.mark.parametrize("bilinear_type,count", [("field_all", 1), ("field_each", 4), ("field_interaction", 10)])
def test_bilinear_every_matrix_is_used(bilinear_type, count):
    torch.manual_seed(0)
    layer = BilinearInteraction(num_fields=5, embed_dim=3, bilinear_type=bilinear_type)
    assert layer.weight.shape == (count, 3, 3)
    x = torch.randn(4, 5, 3)
    out = layer(x)
    assert out.shape == (4, 10, 3)
    out.sum().backward()
    assert (layer.weight.grad.flatten(start_dim=1).abs().sum(dim=1) > 0).all()  # no matrix left untrained
    # reference: (v_i W_m) ⊙ v_j with the matrix m that the type assigns to pair k = (i, j)
    pairs = list(zip(layer.rows.tolist(), layer.cols.tolist()))
    matrix = {"field_all": lambda k, i: 0, "field_each": lambda k, i: i, "field_interaction": lambda k, i: k}
    pick = matrix[bilinear_type]
    reference = torch.stack([(x[:, i] @ layer.weight[pick(k, i)]) * x[:, j] for k, (i, j) in enumerate(pairs)], 1)
    assert torch.allclose(out, reference, atol=1e-6)


def test_bilinear_rejects_bad_arguments():
    with pytest.raises(ValueError, match="bilinear_type"):
        BilinearInteraction(3, 2, "field_pair")
    with pytest.raises(ValueError, match="at least 2 fields"):
        BilinearInteraction(1, 2, "field_all")


# --- the models ---------------------------------------------------------------------------------


MODELS = [
    (AFM, AFMConfig()),
    (AFM, AFMConfig(embed_dim=4, attention_dim=3, dropout=0.0)),
    *[(FiBiNET, FiBiNETConfig(bilinear_type=t)) for t in BILINEAR_TYPES],
    (FiBiNET, FiBiNETConfig(embed_dim=4, reduction_ratio=1, mlp_dims=[8], dropout=0.0)),
]
IDS = ["afm", "afm_small", *[f"fibinet_{t}" for t in BILINEAR_TYPES], "fibinet_small"]


@pytest.mark.parametrize("model_cls,config", MODELS, ids=IDS)
def test_models_give_logits_and_train_every_parameter(model_cls, config):
    torch.manual_seed(0)
    check_logits_and_gradients(model_cls(SCHEMA, config))


def test_afm_sizes_follow_its_config():
    model = AFM(SCHEMA, AFMConfig(embed_dim=4, attention_dim=3))
    assert model.embedding.num_fields == NUM_FIELDS  # the dense price is a field too
    assert len(model.pooling.rows) == NUM_FIELDS * (NUM_FIELDS - 1) // 2
    assert model.pooling.attention[0].weight.shape == (3, 4)  # W: t × k
    assert model.project.weight.shape == (1, 4)  # p


def test_afm_is_first_order_plus_projected_attention_pooling():
    torch.manual_seed(0)
    model = AFM(SCHEMA, AFMConfig()).eval()
    b = batch()
    pooled = model.pooling(model.embedding(b))
    assert torch.allclose(model(b), model.first_order(b) + pooled @ model.project.weight[0], atol=1e-6)
    # the dense value enters the interactions, not only the first-order term
    changed = dict(b, price=b["price"] + 1.0)
    assert not torch.allclose(model.pooling(model.embedding(changed)), pooled)


@pytest.mark.parametrize("model_cls,config", [(AFM, AFMConfig), (FiBiNET, FiBiNETConfig)], ids=["afm", "fibinet"])
def test_dropout_acts_only_in_training(model_cls, config):
    torch.manual_seed(0)
    b = batch()
    model = model_cls(SCHEMA, config(dropout=0.5))
    model.train()
    assert not torch.allclose(model(b), model(b))
    model.eval()
    assert torch.allclose(model(b), model(b))
    still = model_cls(SCHEMA, config(dropout=0.0)).train()
    assert torch.allclose(still(b), still(b))


def test_afm_needs_two_fields():
    one = Schema({"user": (SparseFeature("user_id", 5),), "item": ()})
    with pytest.raises(ValueError, match="at least 2 fields"):
        AFM(one, AFMConfig())


def test_fibinet_sizes_follow_its_config():
    num_fields = NUM_FIELDS - 1  # the dense price joins the MLP, not the fields
    pairs = num_fields * (num_fields - 1) // 2
    model = FiBiNET(SCHEMA, FiBiNETConfig(embed_dim=4, reduction_ratio=2, bilinear_type="field_each", mlp_dims=[8]))
    assert model.senet.excitation[0].weight.shape == (num_fields // 2, num_fields)
    assert model.bilinear.weight.shape == model.senet_bilinear.weight.shape == (num_fields - 1, 4, 4)
    assert model.bilinear.weight is not model.senet_bilinear.weight  # p and q have their own W
    assert model.deep.net[0].in_features == 2 * pairs * 4 + 1  # p, q and the dense column
    assert model.deep.net[0].out_features == 8


def test_fibinet_senet_branch_matters():
    """q comes from the SENET-reweighted embeddings: zeroing the field importances changes the logits."""
    torch.manual_seed(0)
    model = FiBiNET(SCHEMA, FiBiNETConfig()).eval()
    with torch.no_grad():  # at the 0.01 initial scale q is ~1e-10 (A ∝ |E|, q ∝ |E|^4): make it visible
        model.embedding.table.weight.normal_(std=1.0)
    b = batch()
    before = model(b)
    with torch.no_grad():
        model.senet.excitation[2].weight.zero_()  # A = 0 → V = 0 → q = 0
    after = model(b)
    assert not torch.allclose(after, before)
    p = model.bilinear(model.embedding(b)).flatten(start_dim=1)
    deep_in = torch.cat([p, torch.zeros_like(p), b["price"].unsqueeze(1)], dim=1)
    assert torch.allclose(after, model.first_order(b) + model.deep(deep_in).squeeze(-1), atol=1e-6)


@pytest.mark.parametrize(
    "config,kwargs,message",
    [
        (AFMConfig, {"embed_dim": 0}, "embed_dim"),
        (AFMConfig, {"attention_dim": 0}, "attention_dim"),
        (AFMConfig, {"dropout": 1.0}, "dropout"),
        (AFMConfig, {"dropout": -0.1}, "dropout"),
        (AFMConfig, {"groups": []}, "groups must not be empty"),
        (FiBiNETConfig, {"embed_dim": 0}, "embed_dim"),
        (FiBiNETConfig, {"reduction_ratio": 0}, "reduction_ratio"),
        (FiBiNETConfig, {"bilinear_type": "all"}, "bilinear_type"),
        (FiBiNETConfig, {"mlp_dims": []}, "mlp_dims must not be empty"),
        (FiBiNETConfig, {"mlp_dims": [8, 0]}, "mlp_dims must hold positive sizes"),
        (FiBiNETConfig, {"dropout": 1.0}, "dropout"),
        (FiBiNETConfig, {"groups": []}, "groups must not be empty"),
    ],
)
def test_bad_config_raises(config, kwargs, message):
    with pytest.raises(ValueError, match=message):
        config(**kwargs)


@pytest.mark.parametrize("model_cls,config", MODELS, ids=IDS)
def test_onnx_parity(model_cls, config, tmp_path):
    torch.manual_seed(0)
    model = model_cls(SCHEMA, config).eval()
    check_onnx_parity(model, onnx_inputs(), tmp_path / "model.onnx", output_name="logit")
