"""Feature-based two-tower models (Facebook EBR, YouTube SBC, DropoutNet) and their shared layers."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rechub_core.export import export_onnx, parity
from rechub_core.features import DenseFeature, Schema, SequenceFeature, SparseFeature
from rechub_core.layers import GroupInputs, Tower
from rechub_core.models.matching.dropoutnet import DropoutNet, DropoutNetConfig
from rechub_core.models.matching.facebook_dssm import FacebookDSSM, FacebookDSSMConfig
from rechub_core.models.matching.youtube_sbc import YouTubeSBC, YouTubeSBCConfig

SCHEMA = Schema(
    {
        "user": (
            SparseFeature("user_id", 9),
            SparseFeature("gender", 3),
            SequenceFeature("hist", 12, 4, shares="item_id"),
        ),
        "item": (
            SparseFeature("item_id", 12),
            SparseFeature("category", 4),
            SparseFeature("brand", 5),
            DenseFeature("price"),
        ),
    }
)
B = 6


def batch(seed: int = 0, n: int = B) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    hist = torch.randint(1, 12, (n, 4), generator=g)
    hist[0] = 0  # an empty history
    hist[1, :2] = 0  # a short one
    return {
        "user_id": torch.randint(1, 9, (n,), generator=g),
        "gender": torch.randint(0, 3, (n,), generator=g),
        "hist": hist,
        "item_id": torch.randint(1, 12, (n,), generator=g),
        "category": torch.randint(0, 4, (n,), generator=g),
        "brand": torch.randint(0, 5, (n,), generator=g),
        "price": torch.randn(n, generator=g),
    }


def user_part(b):
    return {k: b[k] for k in ("user_id", "gender", "hist")}


def item_part(b):
    return {k: b[k] for k in ("item_id", "category", "brand", "price")}


# --- shared layers ---------------------------------------------------------------------------------


def test_group_inputs_against_hand_computed_fields():
    inputs = GroupInputs(SCHEMA, dim=2)
    with torch.no_grad():  # row r of the fused table = (r, -r)
        rows = torch.arange(len(inputs.embedding.table.weight), dtype=torch.float)
        inputs.embedding.table.weight.copy_(torch.stack([rows, -rows], dim=1))
    off = inputs.embedding.offsets
    assert off["hist"] == off["item_id"]  # the history reads the item tower's rows
    b = {"user_id": torch.tensor([3]), "gender": torch.tensor([1]), "hist": torch.tensor([[0, 0, 2, 6]]),
         "item_id": torch.tensor([5]), "category": torch.tensor([2]), "brand": torch.tensor([4]),
         "price": torch.tensor([0.5])}
    u, g, i = off["user_id"] + 3, off["gender"] + 1, off["item_id"]
    hist_mean = (i + 2 + i + 6) / 2  # padding left out of the mean
    expected_user = torch.tensor([[u, -u, g, -g, hist_mean, -hist_mean]], dtype=torch.float)
    assert torch.equal(inputs.fields(b, "user"), expected_user)
    it, c, br = off["item_id"] + 5, off["category"] + 2, off["brand"] + 4
    expected_item = torch.tensor([[it, -it, c, -c, br, -br, 0.5]], dtype=torch.float)
    assert torch.equal(inputs.fields(b, "item"), expected_item)
    assert inputs.output_dim == {"user": 6, "item": 7}


def test_group_inputs_leave_out_keeps_the_table_but_drops_the_field():
    inputs = GroupInputs(SCHEMA, dim=2, leave_out=("user_id", "item_id"))
    assert inputs.output_dim == {"user": 4, "item": 5}
    assert "user_id" in inputs.embedding.offsets and "item_id" in inputs.embedding.offsets
    only_ids = Schema({"user": (SparseFeature("user_id", 3),), "item": (SparseFeature("item_id", 3),)})
    with pytest.raises(ValueError, match="'user' has no input features"):
        GroupInputs(only_ids, dim=2, leave_out=("user_id",))


def test_tower_normalises_only_when_asked():
    for normalize, expected in ((True, [0.6, 0.8]), (False, [3.0, 4.0])):
        tower = Tower(2, [], output_dim=2, normalize=normalize)
        with torch.no_grad():
            tower.net[0].weight.copy_(torch.tensor([[3.0, 0.0], [0.0, 4.0]]))
            tower.net[0].bias.zero_()
        assert torch.allclose(tower(torch.tensor([[1.0, 1.0]])), torch.tensor([expected]))
    relu = Tower(2, [3], output_dim=2)  # hidden layers are Linear + ReLU, as MLP's
    assert [type(m) for m in relu.net] == [nn.Linear, nn.ReLU, nn.Linear]


# --- models ----------------------------------------------------------------------------------------

MODELS = [
    (FacebookDSSM, FacebookDSSMConfig(tower_dims=[16, 8])),
    (YouTubeSBC, YouTubeSBCConfig(tower_dims=[16, 8])),
    (DropoutNet, DropoutNetConfig(tower_dims=[16, 8], content_dim=8)),
]


@pytest.mark.parametrize("cls,config", MODELS, ids=lambda x: getattr(x, "__name__", ""))
def test_one_table_shared_by_history_and_items(cls, config):
    torch.manual_seed(0)
    model = cls(SCHEMA, config).eval()
    assert sum(isinstance(m, nn.Embedding) for m in model.modules()) == 1
    b = batch()
    user, item = model.user_embedding(user_part(b)), model.item_embedding(item_part(b))
    assert user.shape == (B, 8) and item.shape == (B, 8)
    assert torch.isfinite(user).all()  # row 0's history is empty
    # moving item 7's row moves both item 7's vector and the users who watched it
    seven = {**item_part(b), "item_id": torch.full((B,), 7)}
    item_before = model.item_embedding(seven)
    with torch.no_grad():
        model.inputs.embedding.table.weight[model.inputs.embedding.offsets["item_id"] + 7] += 1.0
    assert not torch.allclose(model.item_embedding(seven), item_before)
    watched = (b["hist"] == 7).any(dim=1)  # (B,)
    assert watched.any() and not watched.all()
    after = model.user_embedding(user_part(b))
    assert not torch.allclose(after[watched], user[watched])
    assert torch.allclose(after[~watched], user[~watched])


@pytest.mark.parametrize("cls,config", MODELS[:2], ids=lambda x: getattr(x, "__name__", ""))
def test_cosine_models_output_unit_vectors(cls, config):
    torch.manual_seed(0)
    model = cls(SCHEMA, config)
    b = batch()
    for out in (model.user_embedding(user_part(b)), model.item_embedding(item_part(b))):
        assert torch.allclose(out.norm(dim=-1), torch.ones(B), atol=1e-6)


def test_youtube_seed_is_the_latest_history_item():
    users = {"user_id": torch.tensor([1, 2, 3]), "gender": torch.tensor([0, 1, 2])}
    first = dict(users, hist=torch.tensor([[0, 0, 0, 0], [1, 2, 3, 4], [0, 0, 5, 6]]))
    second = dict(users, hist=torch.tensor([[0, 0, 0, 0], [4, 2, 3, 1], [0, 0, 6, 5]]))  # same items, another last
    for seed_item in (True, False):
        torch.manual_seed(0)
        model = YouTubeSBC(SCHEMA, YouTubeSBCConfig(tower_dims=[16, 8], seed_item=seed_item)).eval()
        a, b = model.user_embedding(first), model.user_embedding(second)
        assert torch.allclose(a[0], b[0])
        # the averaged history ignores the order, so only the seed tells the two apart
        assert torch.allclose(a[1:], b[1:], atol=1e-6) != seed_item
    assert YouTubeSBC(SCHEMA, YouTubeSBCConfig(seed_item=True)).query_tower.net[0].in_features == 3 * 32 + 32


def _dropoutnet(rate: float) -> DropoutNet:
    torch.manual_seed(0)
    return DropoutNet(SCHEMA, DropoutNetConfig(tower_dims=[16, 8], content_dim=8, dropout_rate=rate))


def test_dropoutnet_cold_item_is_served_from_content():
    model = _dropoutnet(0.5).eval()
    items = item_part(batch())
    cold = dict(items, item_id=torch.zeros(B, dtype=torch.long))
    out = model.item_embedding(cold)
    assert torch.isfinite(out).all() and out.abs().sum() > 0
    assert not torch.allclose(out, model.item_embedding(items))  # warm ids do count
    other_content = dict(cold, category=(cold["category"] + 1) % 4, price=cold["price"] + 1.0)
    assert not torch.allclose(model.item_embedding(other_content), out, atol=1e-6)
    # the unknown id's table row is never read
    with torch.no_grad():
        model.inputs.embedding.table.weight[model.inputs.embedding.offsets["item_id"]] += 5.0
    assert torch.equal(model.item_embedding(cold), out)


def test_dropoutnet_full_dropout_ignores_ids_in_training():
    model = _dropoutnet(1.0).train()
    b = batch()
    other = dict(b, user_id=b["user_id"] % 8 + 1, item_id=b["item_id"] % 11 + 1)
    assert torch.equal(model.user_embedding(user_part(b)), model.user_embedding(user_part(other)))
    assert torch.equal(model.item_embedding(item_part(b)), model.item_embedding(item_part(other)))
    cold = dict(item_part(b), item_id=torch.zeros(B, dtype=torch.long))
    assert torch.equal(model.item_embedding(item_part(b)), model.eval().item_embedding(cold))
    never = _dropoutnet(0.0)
    assert torch.equal(never.train().item_embedding(item_part(b)), never.eval().item_embedding(item_part(b)))


def test_dropoutnet_drops_a_bernoulli_share_of_rows_per_side():
    n = 400
    model = _dropoutnet(0.5)
    one = {k: v[2:3] for k, v in batch().items()}  # a user with a full history
    rows = {k: v.expand(n, *v.shape[1:]) for k, v in one.items()}  # one user and item, n times
    model.eval()
    warm = {"user": model.user_embedding(user_part(rows))[0], "item": model.item_embedding(item_part(rows))[0]}
    cold_rows = dict(rows, user_id=torch.zeros(n, dtype=torch.long), item_id=torch.zeros(n, dtype=torch.long))
    cold = {
        "user": model.user_embedding(user_part(cold_rows))[0],
        "item": model.item_embedding(item_part(cold_rows))[0],
    }
    model.train()
    torch.manual_seed(1)
    out = {"user": model.user_embedding(user_part(rows)), "item": model.item_embedding(item_part(rows))}
    dropped = {}
    for side in ("user", "item"):
        is_warm = torch.isclose(out[side], warm[side], atol=1e-6).all(dim=1)  # (n,)
        is_cold = torch.isclose(out[side], cold[side], atol=1e-6).all(dim=1)  # (n,)
        assert (is_warm ^ is_cold).all()  # every row is kept whole (not rescaled) or dropped whole
        assert 150 <= int(is_cold.sum()) <= 250  # Binomial(400, 0.5): 5 sd either side
        dropped[side] = is_cold
    assert not torch.equal(dropped["user"], dropped["item"])  # the sides draw independently


@pytest.mark.parametrize(
    "config,match",
    [
        (lambda: FacebookDSSMConfig(tower_dims=[]), "tower_dims"),
        (lambda: FacebookDSSMConfig(dropout=1.0), "dropout"),
        (lambda: YouTubeSBCConfig(embed_dim=0), "embed_dim"),
        (lambda: DropoutNetConfig(dropout_rate=1.5), "dropout_rate"),
        (lambda: DropoutNetConfig(content_dim=0), "content_dim"),
    ],
)
def test_configs_reject_bad_values(config, match):
    with pytest.raises(ValueError, match=match):
        config()


def test_models_reject_schemas_they_cannot_use():
    no_user_id = Schema({"user": SCHEMA.groups["user"][1:], "item": SCHEMA.groups["item"]})
    with pytest.raises(ValueError, match="'user_id'"):
        DropoutNet(no_user_id, DropoutNetConfig())
    no_history = Schema({"user": SCHEMA.groups["user"][:2], "item": SCHEMA.groups["item"]})
    with pytest.raises(ValueError, match="shares='item_id'"):
        YouTubeSBC(no_history, YouTubeSBCConfig())


@pytest.mark.parametrize("cls,config", MODELS, ids=lambda x: getattr(x, "__name__", ""))
def test_both_towers_onnx_parity(cls, config, tmp_path):
    torch.manual_seed(0)
    model = cls(SCHEMA, config).eval()
    b = batch(seed=3)
    b["user_id"][2] = 0  # an unknown user and item: DropoutNet's cold path
    b["item_id"][4] = 0
    for fn, inputs in ((model.user_embedding, user_part(b)), (model.item_embedding, item_part(b))):
        path = tmp_path / f"{fn.__name__}.onnx"
        export_onnx(model, fn, inputs, path, output_name="out")
        assert parity(path, fn, inputs) < 1e-4
        other = batch(seed=4, n=3)
        assert parity(path, fn, {k: other[k] for k in inputs}) < 1e-4
