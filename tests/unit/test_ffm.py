"""Field-aware embeddings, pair interactions and CENet against hand-computed values; DeepFFM and
FAT-DeepFFM: shapes, gradients, sparse training of the table, configs, validation and ONNX parity."""

import pytest
import torch
import torch.nn.functional as F

from rechub_core.features import DenseFeature, Schema, SequenceFeature, SparseFeature
from rechub_core.layers.cen import CENet
from rechub_core.layers.field_aware import FieldAwareEmbedding, FieldAwareInteraction
from rechub_core.models.ranking.deepffm import DeepFFM, DeepFFMConfig
from rechub_core.models.ranking.fat_deepffm import FATDeepFFM, FATDeepFFMConfig
from rechub_core.training.optim import adam_for, embedding_tables, sparse_embeddings
from tests.unit.checks import check_logits_and_gradients, check_onnx_parity, onnx_inputs
from tests.unit.test_models import SCHEMA, B, batch


def _set(param: torch.nn.Parameter, value) -> None:
    with torch.no_grad():
        param.copy_(torch.as_tensor(value, dtype=param.dtype).reshape(param.shape))


# ---------------------------------------------------------------- FieldAwareEmbedding


def _tiny_embedding() -> FieldAwareEmbedding:
    """Fields a (ids 0..2), b (ids 0..1), x (dense); D = 2, so a row holds 3 blocks of 2."""
    emb = FieldAwareEmbedding((SparseFeature("a", 3), SparseFeature("b", 2), DenseFeature("x")), dim=2)
    _set(emb.table.weight, torch.arange(30.0))  # (5, 6): row r is [6r, ..., 6r + 5]
    _set(emb.fields.dense_vectors, torch.arange(6.0))  # x's blocks [0, 1], [2, 3], [4, 5]
    return emb


def test_field_aware_vectors_are_looked_up_in_field_js_block():
    emb = _tiny_embedding()
    assert emb.num_fields == 3 and emb.table.weight.shape == (5, 3 * 2)
    out = emb({"a": torch.tensor([2]), "b": torch.tensor([1]), "x": torch.tensor([0.5])})
    assert out.shape == (1, 3, 3, 2)
    # v_{a,j}: a's id 2 is row 2 = [12..17], block j
    assert torch.equal(out[0, 0], torch.tensor([[12.0, 13.0], [14.0, 15.0], [16.0, 17.0]]))
    # v_{b,j}: b's id 1 sits after a's 3 ids, row 4 = [24..29]
    assert torch.equal(out[0, 1], torch.tensor([[24.0, 25.0], [26.0, 27.0], [28.0, 29.0]]))
    # v_{x,j} = 0.5 · w_{x,j}
    assert torch.equal(out[0, 2], torch.tensor([[0.0, 0.5], [1.0, 1.5], [2.0, 2.5]]))


def test_field_aware_sequence_is_a_masked_mean_of_each_block():
    features = (SparseFeature("item", 3), SequenceFeature("hist", 3, 3, shares="item"))
    emb = FieldAwareEmbedding(features, dim=1)
    _set(emb.table.weight, [[100.0, 100.0], [1.0, 2.0], [3.0, 6.0]])  # row 0 is padding for hist
    out = emb({"item": torch.tensor([1, 2]), "hist": torch.tensor([[0, 1, 2], [0, 0, 0]])})
    # row 0 of hist: mean of ids 1 and 2 per block = [2, 4]; an empty history gives 0
    assert torch.equal(out[:, 1, :, 0], torch.tensor([[2.0, 4.0], [0.0, 0.0]]))
    assert torch.equal(out[:, 0, :, 0], torch.tensor([[1.0, 2.0], [3.0, 6.0]]))


def test_field_aware_table_is_one_embedding_that_trains_sparsely():
    torch.manual_seed(0)
    model = DeepFFM(SCHEMA, DeepFFMConfig(embed_dim=4, mlp_dims=[8]))
    assert model.embedding.table in embedding_tables(model)
    b = batch()
    touched = (b["user_id"] + model.embedding.fields.embedding.offsets["user_id"]).unique()
    before = model.embedding.table.weight.detach().clone()
    with sparse_embeddings(model):
        optimizer = adam_for(model, learning_rate=0.1, weight_decay=0.0)
        F.binary_cross_entropy_with_logits(model(b), b["click"].float()).backward()
        assert model.embedding.table.weight.grad.is_sparse
        optimizer.step()
    changed = (model.embedding.table.weight.detach() != before).any(dim=1)
    assert changed[touched].all()
    assert changed.sum() < len(changed)  # rows no id of the batch touched stay as they were


# ---------------------------------------------------------------- FieldAwareInteraction


def test_interaction_pairs_v_ij_with_v_ji_by_hand():
    vectors = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]).reshape(1, 3, 3, 1)
    # pairs (0,1), (0,2), (1,2): v01·v10, v02·v20, v12·v21; the diagonal v_ii is never used
    assert torch.equal(FieldAwareInteraction(3)(vectors), torch.tensor([[[8.0], [21.0], [48.0]]]))


def test_interaction_is_elementwise_per_dimension():
    vectors = torch.zeros(1, 2, 2, 3)
    vectors[0, 0, 1] = torch.tensor([1.0, 2.0, 3.0])  # v_{0,1}
    vectors[0, 1, 0] = torch.tensor([2.0, -1.0, 0.5])  # v_{1,0}
    vectors[0, 0, 0] = vectors[0, 1, 1] = 9.0
    out = FieldAwareInteraction(2)(vectors)
    assert torch.equal(out, torch.tensor([[[2.0, -2.0, 1.5]]]))
    assert FieldAwareInteraction(5).num_pairs == 10


# ---------------------------------------------------------------- CENet


def test_cenet_compose_excite_reweight_by_hand():
    cen = CENet(num_vectors=2, dim=2, reduction_ratio=1)
    _set(cen.kernels, [[1.0, 0.0], [0.0, 1.0]])
    _set(cen.squeeze.weight, [[1.0, 0.0], [0.0, 1.0]])
    _set(cen.squeeze.bias, [0.0, -1.0])
    _set(cen.excite.weight, [[0.5, 0.0], [1.0, 1.0]])
    _set(cen.excite.bias, [0.0, -3.0])
    vectors = torch.tensor([[[2.0, -1.0], [3.0, -4.0]]])
    # d = ReLU([<[1,0],[2,-1]>, <[0,1],[3,-4]>]) = ReLU([2, -4]) = [2, 0]
    # h = ReLU([2, 0] + [0, -1]) = [2, 0]; a = ReLU([1, 2] + [0, -3]) = [1, 0]
    assert torch.equal(cen.weights(vectors), torch.tensor([[1.0, 0.0]]))
    assert torch.equal(cen(vectors), torch.tensor([[[2.0, -1.0], [0.0, 0.0]]]))


def test_cenet_sizes_and_initial_weights():
    cen = CENet(num_vectors=5, dim=3, reduction_ratio=2)
    assert cen.kernels.shape == (5, 3) and cen.squeeze.out_features == 3 and cen.excite.out_features == 5
    torch.manual_seed(0)
    a = CENet(num_vectors=100, dim=8)(torch.randn(16, 100, 8) * 0.01)
    assert (a != 0).all()  # the output bias starts at 1: no vector is silenced at the start
    with pytest.raises(ValueError, match="positive sizes"):
        CENet(num_vectors=4, dim=2, reduction_ratio=0)


# ---------------------------------------------------------------- the models

MODELS = [
    lambda **kw: DeepFFM(SCHEMA, DeepFFMConfig(**kw)),
    lambda **kw: FATDeepFFM(SCHEMA, FATDeepFFMConfig(**kw)),
]


@pytest.mark.parametrize("make", MODELS, ids=["deepffm", "fat_deepffm"])
def test_logits_loss_and_gradients_reach_every_parameter(make):
    torch.manual_seed(0)
    check_logits_and_gradients(make())


@pytest.mark.parametrize("make", MODELS, ids=["deepffm", "fat_deepffm"])
def test_padding_never_leaks(make):
    torch.manual_seed(0)
    model = make().eval()
    b = batch()
    before = model(b)
    with torch.no_grad():
        model.embedding.table.weight[model.embedding.fields.embedding.offsets["hist"]] += 5.0
    assert torch.allclose(model(b), before, atol=1e-6)
    assert not torch.allclose(model(dict(b, hist=torch.flip(b["hist"], [0]))), before)


def test_model_sizes_follow_the_config():
    # SCHEMA: 4 user fields (3 sparse, 1 sequence) + 3 item sparse + 1 dense = 8 fields, 28 pairs
    model = DeepFFM(SCHEMA, DeepFFMConfig(embed_dim=3, mlp_dims=[16, 4]))
    assert model.embedding.num_fields == 8 and model.embedding.table.weight.shape[1] == 8 * 3
    assert model.deep.net[0].in_features == 28 * 3  # Hadamard: a D-vector per pair
    assert [m.out_features for m in model.deep.net if isinstance(m, torch.nn.Linear)] == [16, 4, 1]
    assert not any(isinstance(m, torch.nn.Dropout) for m in DeepFFM(SCHEMA, DeepFFMConfig(dropout=0.0)).modules())
    item_only = DeepFFM(SCHEMA, DeepFFMConfig(groups=["item"]))
    assert item_only.embedding.num_fields == 4 and item_only.interaction.num_pairs == 6
    fat = FATDeepFFM(SCHEMA, FATDeepFFMConfig(reduction_ratio=4))
    assert isinstance(fat.attention, CENet) and fat.attention.squeeze.out_features == 64 // 4
    assert isinstance(DeepFFM(SCHEMA, DeepFFMConfig()).attention, torch.nn.Identity)


@pytest.mark.parametrize(
    "config",
    [
        DeepFFMConfig(embed_dim=2, mlp_dims=[4], dropout=0.0),
        DeepFFMConfig(groups=["item"]),
        FATDeepFFMConfig(reduction_ratio=3, groups=["user"]),
        FATDeepFFMConfig(embed_dim=16, mlp_dims=[32, 16, 8]),
    ],
    ids=["small", "item_only", "fat_user_only", "fat_wide"],
)
def test_configurations_give_logits(config):
    torch.manual_seed(0)
    model = (FATDeepFFM if isinstance(config, FATDeepFFMConfig) else DeepFFM)(SCHEMA, config)
    assert model(batch()).shape == (B,)


def test_fat_deepffm_is_deepffm_with_its_vectors_reweighted():
    torch.manual_seed(0)
    plain = DeepFFM(SCHEMA, DeepFFMConfig(embed_dim=4, mlp_dims=[8])).eval()
    _set(plain.embedding.table.weight, torch.randn_like(plain.embedding.table.weight))  # unit scale, not 0.01
    fat = FATDeepFFM(SCHEMA, FATDeepFFMConfig(embed_dim=4, mlp_dims=[8])).eval()
    fat.load_state_dict(plain.state_dict(), strict=False)
    _set(fat.attention.excite.weight, torch.zeros_like(fat.attention.excite.weight))
    _set(fat.attention.excite.bias, torch.ones(64))  # every weight exactly 1
    b = batch()
    assert torch.allclose(fat(b), plain(b), atol=1e-6)
    # silencing v_{0,1} (weight 0) and doubling v_{1,0} changes the first pair's interaction only
    weights = torch.ones(64)
    weights[0 * 8 + 1] = 0.0
    weights[1 * 8 + 0] = 2.0
    _set(fat.attention.excite.bias, weights)
    expected = plain.embedding(b)
    expected[:, 0, 1] = 0.0
    expected[:, 1, 0] *= 2.0
    pairs = plain.interaction(expected).flatten(start_dim=1)
    assert torch.allclose(fat(b), plain.first_order(b) + plain.deep(pairs).squeeze(-1), atol=1e-6)
    assert not torch.allclose(fat(b), plain(b))


@pytest.mark.parametrize(
    "cls,kwargs,message",
    [
        (DeepFFMConfig, {"embed_dim": 0}, "embed_dim"),
        (DeepFFMConfig, {"mlp_dims": []}, "mlp_dims must not be empty"),
        (DeepFFMConfig, {"mlp_dims": [8, 0]}, "mlp_dims must hold positive sizes"),
        (DeepFFMConfig, {"groups": []}, "groups must not be empty"),
        (DeepFFMConfig, {"dropout": 1.0}, "dropout"),
        (DeepFFMConfig, {"dropout": -0.1}, "dropout"),
        (FATDeepFFMConfig, {"reduction_ratio": 0}, "reduction_ratio"),
        (FATDeepFFMConfig, {"embed_dim": -1}, "embed_dim"),
    ],
)
def test_bad_config_raises(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(**kwargs)


def test_config_names():
    assert DeepFFMConfig().name == "deepffm" and FATDeepFFMConfig().name == "fat_deepffm"
    assert DeepFFMConfig().embed_dim == 8 and FATDeepFFMConfig().reduction_ratio == 1


@pytest.mark.parametrize("make", MODELS, ids=["deepffm", "fat_deepffm"])
def test_onnx_parity(make, tmp_path):
    torch.manual_seed(0)
    model = make().eval()
    check_onnx_parity(model, onnx_inputs(), tmp_path / "model.onnx", output_name="logit")
