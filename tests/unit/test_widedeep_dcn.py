"""Crossed-feature ids by hand, and Wide & Deep and DCN: shapes, gradients, configs, ONNX parity."""

import pytest
import torch

from rechub_core.export import parity
from rechub_core.features import SparseFeature
from rechub_core.layers.cross import CrossNet
from rechub_core.layers.crossed import CrossedIds
from rechub_core.models.ranking.dcn import DCN, DCNConfig
from rechub_core.models.ranking.widedeep import WideDeep, WideDeepConfig
from tests.unit.checks import check_logits_and_gradients, check_onnx_parity, onnx_inputs
from tests.unit.test_models import SCHEMA, batch

A, BB, C = SparseFeature("a", 3), SparseFeature("b", 4), SparseFeature("c", 5)


def _ids(**columns) -> dict[str, torch.Tensor]:
    return {name: torch.tensor(values) for name, values in columns.items()}


# --- CrossedIds --------------------------------------------------------------------------------


def test_exact_ids_of_two_and_three_way_crosses_by_hand():
    crossed = CrossedIds([[A, BB], [A, BB, C], [C, A]], num_buckets=1000)
    assert crossed.sizes == [12, 60, 15] and crossed.num_ids == 87
    assert crossed.offsets.tolist() == [0, 12, 72]
    out = crossed(_ids(a=[0, 2, 1], b=[1, 3, 0], c=[4, 0, 2]))
    # a·4 + b;  (a·4 + b)·5 + c;  c·3 + a
    assert out.tolist() == [[1, 9, 12], [11, 55, 2], [4, 22, 7]]


def test_every_combination_gets_its_own_id():
    crossed = CrossedIds([[A, BB, C]], num_buckets=60)  # exactly the product: still exact
    grid = torch.cartesian_prod(torch.arange(3), torch.arange(4), torch.arange(5))  # (60, 3)
    out = crossed(_ids(a=grid[:, 0].tolist(), b=grid[:, 1].tolist(), c=grid[:, 2].tolist()))
    assert sorted(out[:, 0].tolist()) == list(range(60))


def test_crosses_larger_than_the_buckets_are_hashed_by_modulo():
    x, y = SparseFeature("x", 5), SparseFeature("y", 7)
    crossed = CrossedIds([[x, y], [A, BB]], num_buckets=10)  # 35 > 10 hashed, 12 > 10 hashed too
    assert crossed.sizes == [10, 10]
    out = crossed(_ids(x=[4, 2, 0], y=[6, 3, 5], a=[2, 0, 1], b=[3, 1, 2]))
    # (x·7 + y) mod 10 = 34, 17, 5 → 4, 7, 5;  (a·4 + b) mod 10 = 11, 1, 6 → 1, 1, 6
    assert out.tolist() == [[4, 1], [7, 1], [5, 6]]


def test_hashing_never_overflows_int64():
    # a product of 2^90 combinations: the plain mixed-radix id would overflow int64
    huge = [SparseFeature(n, 2**30) for n in ("p", "q", "r")]
    crossed = CrossedIds([huge], num_buckets=999_983)
    p, q, r = 2**30 - 1, 123_456_789, 987_654_321
    expected = ((p * 2**30 + q) * 2**30 + r) % 999_983  # Python integers: exact
    assert crossed(_ids(p=[p], q=[q], r=[r])).item() == expected


@pytest.mark.parametrize(
    "crosses,buckets,message",
    [([[A]], 10, "at least two"), ([], 10, "at least two"), ([[A, BB]], 0, "num_buckets"), ([[A, BB]], 2**62, "int64")],
)
def test_bad_crosses_are_rejected(crosses, buckets, message):
    with pytest.raises(ValueError, match=message):
        CrossedIds(crosses, num_buckets=buckets)


# --- Wide & Deep -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        WideDeepConfig(),
        WideDeepConfig(crosses=[["user_id", "item_id"], ["gender", "age_bucket", "category"]], cross_buckets=50),
        WideDeepConfig(crosses=[], embed_dim=4, mlp_dims=[8], dropout=0.0),
    ],
    ids=["default", "hashed_three_way", "no_crosses"],
)
def test_widedeep_logits_and_gradients_reach_every_parameter(config):
    torch.manual_seed(0)
    check_logits_and_gradients(WideDeep(SCHEMA, config), batch())


def test_widedeep_cross_tables_follow_the_config():
    default = WideDeep(SCHEMA, WideDeepConfig())
    assert default.crossed.sizes == [3 * 4, 6 * 6]  # gender × category, age_bucket × price_bucket: exact
    assert default.cross_weights.num_embeddings == 48
    hashed = WideDeep(SCHEMA, WideDeepConfig(cross_buckets=20))
    assert hashed.crossed.sizes == [12, 20]
    plain = WideDeep(SCHEMA, WideDeepConfig(crosses=[], embed_dim=4, mlp_dims=[8]))
    assert plain.crossed is None and not hasattr(plain, "cross_weights")
    # deep input: 7 fields × embed 4 + 1 dense column
    assert plain.deep.net[0].in_features == 29 and plain.deep.output_dim == 1


def test_widedeep_adds_one_weight_per_cross_combination_to_the_logit():
    torch.manual_seed(0)
    model = WideDeep(SCHEMA, WideDeepConfig(crosses=[["gender", "category"]])).eval()
    b = batch()
    before = model(b)
    g, c = int(b["gender"][0]), int(b["category"][0])
    with torch.no_grad():
        model.cross_weights.weight[g * 4 + c] = 2.5  # the weight of AND(gender=g, category=c)
    hit = (b["gender"] == g) & (b["category"] == c)
    assert torch.allclose(model(b) - before, 2.5 * hit.float(), atol=1e-6)
    # the weight is the pair's, not either feature's: the batch has rows sharing only one of the two
    assert ((b["gender"] == g) & ~hit).any() or ((b["category"] == c) & ~hit).any()


def test_widedeep_is_wide_plus_deep():
    torch.manual_seed(0)
    model = WideDeep(SCHEMA, WideDeepConfig()).eval()
    b = batch(seed=1)
    with torch.no_grad():
        model.cross_weights.weight.normal_()
        ids = model.crossed(b) + model.crossed.offsets  # (B, 2)
        wide = model.first_order(b) + model.cross_weights.weight[ids, 0].sum(dim=1)
        deep = model.deep(model.input(b)).squeeze(-1)
        assert torch.allclose(model(b), wide + deep, atol=1e-6)


@pytest.mark.parametrize("cross", [["gender", "brand"], ["gender", "price"], ["hist", "category"]])
def test_widedeep_cross_of_a_non_sparse_or_unknown_feature_is_named(cross):
    bad = next(n for n in cross if n != "gender" and n != "category")
    with pytest.raises(ValueError, match=repr(bad)):
        WideDeep(SCHEMA, WideDeepConfig(crosses=[cross]))


def test_widedeep_cross_outside_the_configured_groups_is_named():
    with pytest.raises(ValueError, match="'category'"):
        WideDeep(SCHEMA, WideDeepConfig(groups=["user"]))  # the default crosses reach into the item group


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"crosses": [["gender"]]}, "two or more distinct"),
        ({"crosses": [["gender", "gender"]]}, "two or more distinct"),
        ({"crosses": [["gender", "category"], ["category", "gender"]]}, "listed twice"),
        ({"cross_buckets": 0}, "cross_buckets"),
        ({"embed_dim": 0}, "embed_dim"),
        ({"mlp_dims": []}, "mlp_dims must not be empty"),
        ({"groups": []}, "groups must not be empty"),
        ({"dropout": 1.0}, "dropout"),
    ],
)
def test_bad_widedeep_config_raises(kwargs, message):
    with pytest.raises(ValueError, match=message):
        WideDeepConfig(**kwargs)


# --- DCN ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [DCNConfig(), DCNConfig(num_cross_layers=1, mlp_dims=[8], dropout=0.3), DCNConfig(groups=["item"], embed_dim=4)],
    ids=["default", "one_layer_dropout", "item_only"],
)
def test_dcn_logits_and_gradients_reach_every_parameter(config):
    torch.manual_seed(0)
    check_logits_and_gradients(DCN(SCHEMA, config), batch())


def test_dcn_runs_the_v1_cross_network_beside_the_mlp_on_one_input():
    torch.manual_seed(0)
    model = DCN(SCHEMA, DCNConfig(embed_dim=4, num_cross_layers=2, mlp_dims=[8, 5])).eval()
    d = 7 * 4 + 1  # 7 fields × embed 4 + 1 dense column
    assert isinstance(model.cross, CrossNet) and model.cross.weight.shape == (2, d)
    assert model.head.in_features == d + 5
    b = batch(seed=2)
    with torch.no_grad():
        x0 = model.input(b)
        expected = model.head(torch.cat([model.cross(x0), model.deep(x0)], dim=1)).squeeze(-1)
        assert torch.allclose(model(b), expected, atol=1e-6)
        # the cross network matters: its weights change the logit
        model.cross.weight.mul_(3.0)
        assert not torch.allclose(model(b), expected, atol=1e-4)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"num_cross_layers": 0}, "num_cross_layers"),
        ({"embed_dim": 0}, "embed_dim"),
        ({"mlp_dims": []}, "mlp_dims must not be empty"),
        ({"mlp_dims": [8, 0]}, "positive sizes"),
        ({"groups": []}, "groups must not be empty"),
        ({"dropout": -0.1}, "dropout"),
    ],
)
def test_bad_dcn_config_raises(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DCNConfig(**kwargs)


# --- ONNX --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda: WideDeep(SCHEMA, WideDeepConfig()),
        lambda: WideDeep(SCHEMA, WideDeepConfig(crosses=[["user_id", "item_id", "gender"]], cross_buckets=37)),
        lambda: DCN(SCHEMA, DCNConfig()),
    ],
    ids=["widedeep", "widedeep_hashed", "dcn"],
)
def test_onnx_parity(build, tmp_path):
    torch.manual_seed(0)
    model = build().eval()
    with torch.no_grad():  # the wide weights start at zero: give them values to check
        for m in model.modules():
            if isinstance(m, torch.nn.Embedding) and m.embedding_dim == 1:
                m.weight.normal_(std=0.1)
    inputs = onnx_inputs()
    other = {k: v[:3] for k, v in batch(seed=4).items() if k in inputs}  # another, smaller batch
    path = tmp_path / "model.onnx"
    check_onnx_parity(model, inputs, path, output_name="logit", smaller=other)
    assert parity(path, model, other) < 1e-5
