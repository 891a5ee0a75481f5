"""BST's Transformer block and SIM's behaviour search by hand; both models' shapes, gradients,
padding, configurations, ONNX parity, and SIM's bounded memory over a 2,000-long window."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from rechub_core.features import DenseFeature, Schema, SequenceFeature, SparseFeature
from rechub_core.layers.behavior_search import SoftSearch, hard_search, top_k
from rechub_core.layers.bst_block import BSTBlock, leaky
from rechub_core.layers.mlp import MLP
from rechub_core.models.ranking.bst import BST, BSTConfig
from rechub_core.models.ranking.sim import SIM, SIMConfig
from tests.unit.checks import (
    check_logits_and_gradients,
    check_loss_reaches_every_parameter,
    check_onnx_parity,
    history_padding_changed,
    onnx_inputs,
    real_history_changed,
    shift_padding_rows,
)
from tests.unit.test_models import SCHEMA, B, batch


def _set(param: torch.nn.Parameter, value) -> None:
    with torch.no_grad():
        param.copy_(torch.as_tensor(value, dtype=param.dtype).reshape(param.shape))


# --- BST's block ---------------------------------------------------------------------------


def _ln(v: list[float]) -> torch.Tensor:
    """LayerNorm with unit weight and zero bias, written out: (v - mean) / sqrt(var + 1e-5)."""
    mean = sum(v) / len(v)
    var = sum((x - mean) ** 2 for x in v) / len(v)
    return torch.tensor([(x - mean) / math.sqrt(var + 1e-5) for x in v])


def _identity_block() -> BSTBlock:
    """One head, W^Q = W^K = 0 (uniform attention over the allowed keys), W^V = W^O = W1 = W2 = I, no biases."""
    block = BSTBlock(3, num_heads=1, dropout=0.0).eval()
    _set(block.qkv.weight, torch.cat([torch.zeros(6, 3), torch.eye(3)]))
    _set(block.out.weight, torch.eye(3))
    for linear in (block.ffn[0], block.ffn[2]):
        _set(linear.weight, torch.eye(3))
        _set(linear.bias, torch.zeros(3))
    return block


def test_bst_block_post_norm_by_hand():
    x = torch.tensor([[[5.0, 5.0, 5.0], [3.0, 0.0, 0.0], [0.0, 0.0, 3.0]]])  # (1, 3, 3); position 0 is padding
    mask = torch.tensor([[False, True, True]])
    out = _identity_block()(x, mask)
    # both real positions attend uniformly to the two real keys: mean = [1.5, 0, 1.5]
    h1 = _ln([4.5, 0.0, 1.5])  # LayerNorm(x + attention): dev [2.5, -2, -0.5], var 3.5
    h2 = _ln([1.5, 0.0, 4.5])
    torch.testing.assert_close(h1, torch.tensor([2.5, -2.0, -0.5]) / math.sqrt(3.5 + 1e-5))

    def leaky_relu(v):
        return torch.where(v > 0, v, 0.01 * v)

    expected1 = _ln((h1 + leaky_relu(h1)).tolist())  # LayerNorm(h + FFN(h)), FFN = LeakyReLU(h)
    expected2 = _ln((h2 + leaky_relu(h2)).tolist())
    torch.testing.assert_close(out[0, 1], expected1, rtol=0, atol=1e-5)
    torch.testing.assert_close(out[0, 2], expected2, rtol=0, atol=1e-5)
    assert (out[0, 0] == 0).all()  # padding position zeroed
    # the LeakyReLU lets negatives through: h1 has -2 where a ReLU would give 0 and a different result
    relu_version = _ln((h1 + h1.clamp(min=0)).tolist())
    assert not torch.allclose(out[0, 1], relu_version, atol=1e-3)


def test_bst_block_is_post_norm_and_bidirectional_and_masks_padding():
    torch.manual_seed(0)
    block = BSTBlock(8, num_heads=2, dropout=0.1).eval()
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1], [0, 0, 0, 0, 1]]).bool()
    x = torch.randn(3, 5, 8)
    out = block(x, mask)
    real = out[mask]  # (N, 8): each real position ends on a LayerNorm (unit weight, zero bias at init)
    torch.testing.assert_close(real.mean(-1), torch.zeros(len(real)), rtol=0, atol=1e-5)
    torch.testing.assert_close(real.var(-1, unbiased=False), torch.ones(len(real)), rtol=0, atol=1e-3)
    assert (out[~mask] == 0).all()
    # padding inputs never leak
    noisy = torch.where(mask.unsqueeze(-1), x, 100 * torch.randn(3, 5, 8))
    torch.testing.assert_close(block(noisy, mask), out, rtol=0, atol=1e-6)
    # bidirectional: changing the last position changes the earlier real ones
    later = x.clone()
    later[:, -1] += 1.0
    assert not torch.allclose(block(later, mask)[1, :-1], out[1, :-1])


def test_leaky_replaces_every_relu():
    mlp = leaky(MLP(2, [3, 3], output_dim=1))
    assert not any(isinstance(m, torch.nn.ReLU) for m in mlp.modules())
    assert sum(isinstance(m, torch.nn.LeakyReLU) for m in mlp.modules()) == 2
    assert torch.allclose(mlp.net[1](torch.tensor([-2.0, 3.0])), torch.tensor([-0.02, 3.0]))


# --- BST ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        BSTConfig(),
        BSTConfig(num_blocks=2, num_heads=2),
        BSTConfig(embed_dim=8, num_heads=1, mlp_dims=[16], dropout=0.0),
    ],
    ids=["default", "two_blocks", "small"],
)
def test_bst_shapes_loss_and_gradients(config):
    torch.manual_seed(0)
    check_logits_and_gradients(BST(SCHEMA, config))


def test_bst_config_fields_shape_the_model():
    model = BST(SCHEMA, BSTConfig(embed_dim=8, num_heads=4, num_blocks=3, mlp_dims=[32, 16]))
    width = 2 * 8 + 8  # item and category embeddings, then the position's
    assert len(model.blocks) == 3 and model.blocks[0].qkv.in_features == width and model.blocks[0].num_heads == 4
    plain = 6 * 8 + 1  # user_id, gender, age_bucket, item_id, category, price_bucket; price
    # the target's output of the last block, then the other fields
    assert model.mlp.net[0].in_features == width + plain
    assert [m.out_features for m in model.mlp.net if isinstance(m, torch.nn.Linear)] == [32, 16, 1]
    assert model.blocks[0].dropout.p == BSTConfig().dropout == 0.2


def test_bst_padding_never_leaks_and_behaviours_and_times_matter():
    torch.manual_seed(0)
    model = BST(SCHEMA, BSTConfig()).eval()
    b = batch()
    before = model(b)
    torch.testing.assert_close(model(history_padding_changed(b)), before, rtol=0, atol=1e-6)
    shift_padding_rows(model.inputs.embedding, "hist")  # the padding row of the shared item table
    torch.testing.assert_close(model(b), before, rtol=0, atol=1e-6)
    real = b["hist"] > 0  # row 0 is all padding
    assert not torch.allclose(model(real_history_changed(b)), before)
    assert not torch.allclose(model(dict(b, hist_dt=torch.where(real, 1 + b["hist_dt"] % 16, 0))), before)
    with torch.no_grad():  # the target's own position, id 0
        model.position.weight[0] += 1.0
    assert not torch.allclose(model(b), before)


def test_bst_needs_the_behaviour_group():
    with pytest.raises(ValueError, match="hist_category"):
        BST(SCHEMA, BSTConfig(groups=["user", "item"]))


# --- SIM's search ---------------------------------------------------------------------------


def test_hard_search_takes_the_most_recent_same_category_behaviours():
    categories = torch.tensor(
        [
            [0, 0, 2, 1, 2, 2, 3, 2],  # matches of 2 at 2, 4, 5, 7
            [0, 0, 0, 0, 0, 2, 1, 3],  # one match, at 5
            [0, 0, 0, 0, 0, 0, 0, 0],  # an empty window: its padding's category 0 equals the target's
            [1, 1, 1, 1, 1, 1, 1, 1],  # no match
        ]
    )
    real = torch.tensor([[0, 0, 1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 1, 1, 1], [0] * 8, [1] * 8]).bool()
    target = torch.tensor([2, 2, 0, 3])
    index, chosen = hard_search(categories, target, real, k=3)
    assert index.shape == chosen.shape == (4, 3)
    assert index[0].tolist() == [7, 5, 4] and chosen[0].all()  # most recent first
    assert index[1, 0] == 5 and chosen[1].tolist() == [True, False, False]  # padded slots
    assert not chosen[2].any() and not chosen[3].any()  # padding is never chosen
    index, chosen = hard_search(categories, target, real, k=5)
    assert index[0, :4].tolist() == [7, 5, 4, 2] and chosen[0].tolist() == [True] * 4 + [False]
    index, chosen = hard_search(categories, target, real, k=20)  # k beyond the window: capped at L
    assert index.shape == (4, 8) and chosen.sum(1).tolist() == [4, 1, 0, 0]


def test_top_k_by_hand_skips_non_candidates():
    scores = torch.tensor([[0.1, 0.9, -0.5, 5.0], [1.0, 2.0, 3.0, 4.0]])
    real = torch.tensor([[True, True, True, False], [False, False, True, True]])
    index, chosen = top_k(scores, real, 2)
    assert index.tolist() == [[1, 0], [3, 2]] and chosen.all()
    index, chosen = top_k(scores, real, 4)
    assert index[0].tolist() == [1, 0, 2, 3] and chosen[0].tolist() == [True, True, True, False]
    assert index[1, :2].tolist() == [3, 2] and chosen[1].tolist() == [True, True, False, False]


def test_soft_search_scores_are_inner_products_of_projections():
    search = SoftSearch(2, 2)
    _set(search.target.weight, [[1.0, 0.0], [0.0, 2.0]])  # W_a e_a = [e0, 2 e1]
    _set(search.behavior.weight, [[0.0, 1.0], [1.0, 0.0]])  # W_b e_i = [e1, e0]
    target = torch.tensor([[1.0, 1.0]])  # → [1, 2]
    behaviors = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [3.0, 3.0], [9.0, 9.0]]])  # → [0,1], [1,0], [3,3], [9,9]
    real = torch.tensor([[True, True, True, False]])
    index, chosen, scores = search(target, behaviors, real, k=2)
    assert scores.tolist() == [[2.0, 1.0, 9.0, 27.0]]
    assert index.tolist() == [[2, 0]] and chosen.all()  # the padding's 27 is never chosen


# --- SIM ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [SIMConfig(), SIMConfig(top_k=3, num_heads=1), SIMConfig(search="soft", top_k=4, gsu_dim=2, auxiliary_weight=0.5)],
    ids=["hard", "hard_small_k", "soft"],
)
def test_sim_shapes_loss_and_gradients(config):
    torch.manual_seed(0)
    model = SIM(SCHEMA, config)
    b = batch()
    logits, auxiliary = model.logits_and_auxiliary_loss(b)
    assert logits.shape == (B,)
    if config.search == "hard":
        assert auxiliary.item() == 0.0
    else:
        assert auxiliary.item() > 0.0
    check_loss_reaches_every_parameter(model, b, logits, auxiliary)
    model.eval()
    torch.testing.assert_close(model(b), model.logits_and_auxiliary_loss(b)[0])


def test_sim_soft_search_learns_only_through_the_auxiliary_loss():
    torch.manual_seed(0)
    b = batch()
    model = SIM(SCHEMA, SIMConfig(search="soft", top_k=4))
    F.binary_cross_entropy_with_logits(model(b), b["click"].float()).backward()
    assert all(p.grad is None for p in [*model.gsu.parameters(), *model.search.parameters()])
    model.zero_grad()
    weighted = SIM(SCHEMA, SIMConfig(search="soft", top_k=4, auxiliary_weight=2.0))
    weighted.load_state_dict(model.state_dict())
    model.eval()  # the same dropout-free pass in both
    weighted.eval()
    one, two = model.logits_and_auxiliary_loss(b)[1], weighted.logits_and_auxiliary_loss(b)[1]
    torch.testing.assert_close(two, 2 * one)


def test_sim_config_fields_shape_the_model():
    model = SIM(SCHEMA, SIMConfig(embed_dim=8, num_heads=2, mlp_dims=[32]))
    assert model.long.key.in_features == 2 * 8 + 8  # item, category, then the time
    assert model.long.num_heads == model.short.num_heads == 2
    assert not hasattr(model, "gsu")  # hard search has no GSU parameters
    soft = SIM(SCHEMA, SIMConfig(search="soft", gsu_dim=3))
    assert soft.gsu.embedding.table.weight.shape == (21 + 4, 3)  # items and categories only, 3 wide
    assert soft.search.target.in_features == 6


@pytest.mark.parametrize("search", ["hard", "soft"])
def test_sim_padding_never_leaks(search):
    torch.manual_seed(0)
    model = SIM(SCHEMA, SIMConfig(search=search, top_k=4)).eval()
    b = batch()
    before = model(b)
    long_pad, short_pad = b["long_item"] == 0, b["hist"] == 0  # row 0 has an empty window and history
    changed = dict(
        b,
        long_category=torch.where(long_pad, b["category"].unsqueeze(1).clamp(min=1), b["long_category"]),
        long_dt=torch.where(long_pad, 5, b["long_dt"]),
        hist_category=torch.where(short_pad, 2, b["hist_category"]),
    )
    torch.testing.assert_close(model(changed), before, rtol=0, atol=1e-6)
    real = ~long_pad
    assert not torch.allclose(model(dict(b, long_item=torch.where(real, 1 + b["long_item"] % 20, 0))), before)


def test_sim_hard_search_reads_only_the_top_k_same_category_behaviours():
    torch.manual_seed(0)
    model = SIM(SCHEMA, SIMConfig(top_k=1)).eval()
    b = batch()
    row = 5  # a full window
    b["category"][row] = 2
    b["long_category"][row] = torch.tensor([1, 2, 3, 2, 1, 1, 3, 2, 1, 3, 1, 1])  # matches at 1, 3, 7
    before = model(b)[row]

    def with_item(position):
        items = b["long_item"].clone()
        items[row, position] = 1 + items[row, position] % 20
        return model(dict(b, long_item=items))[row]

    torch.testing.assert_close(with_item(3), before, rtol=0, atol=0)  # an older match: not in the top 1
    torch.testing.assert_close(with_item(11), before, rtol=0, atol=0)  # another category
    assert not torch.allclose(with_item(7), before)  # the most recent match


@pytest.mark.parametrize(
    "config,kwargs,message",
    [
        (BSTConfig, {"num_heads": 3}, "multiple of num_heads"),
        (BSTConfig, {"num_blocks": 0}, "num_blocks"),
        (BSTConfig, {"embed_dim": 0}, "embed_dim"),
        (SIMConfig, {"search": "mips"}, "search"),
        (SIMConfig, {"top_k": 0}, "top_k"),
        (SIMConfig, {"num_heads": 0}, "num_heads"),
        (SIMConfig, {"gsu_dim": 0}, "gsu_dim"),
        (SIMConfig, {"embed_dim": 0}, "embed_dim"),
        (SIMConfig, {"auxiliary_weight": -1.0}, "auxiliary_weight"),
        *[(c, {"dropout": 1.0}, "dropout") for c in (BSTConfig, SIMConfig)],
        *[(c, {"mlp_dims": []}, "mlp_dims must not be empty") for c in (BSTConfig, SIMConfig)],
        *[(c, {"groups": []}, "groups must not be empty") for c in (BSTConfig, SIMConfig)],
    ],
)
def test_bad_config_raises(config, kwargs, message):
    with pytest.raises(ValueError, match=message):
        config(**kwargs)


def test_sim_needs_the_long_window_and_soft_search_a_label():
    with pytest.raises(ValueError, match="long_item"):
        SIM(SCHEMA, SIMConfig(groups=["user", "item", "behavior"]))
    unlabelled = Schema(SCHEMA.groups)
    with pytest.raises(ValueError, match="label"):
        SIM(unlabelled, SIMConfig(search="soft"))


class _LargestFloat(TorchDispatchMode):
    """Records the largest floating-point tensor any operation produces (forward and backward)."""

    def __init__(self):
        super().__init__()
        self.largest: tuple[int, tuple] = (0, ())

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor) and t.is_floating_point() and t.numel() > self.largest[0]:
                self.largest = (t.numel(), tuple(t.shape))
        return out


def _long_window_batch(batch_size: int, length: int) -> tuple[Schema, dict[str, torch.Tensor]]:
    groups = dict(SCHEMA.groups)
    groups["long"] = tuple(SequenceFeature(f.name, f.vocab_size, length, f.shares) for f in SCHEMA.groups["long"])
    g = torch.Generator().manual_seed(1)
    b = {}
    for f in [f for fs in groups.values() for f in fs]:
        if isinstance(f, DenseFeature):
            b[f.name] = torch.randn(batch_size, generator=g)
        elif isinstance(f, SparseFeature):
            b[f.name] = torch.randint(1, f.vocab_size, (batch_size,), generator=g)
        else:
            b[f.name] = torch.randint(1, f.vocab_size, (batch_size, f.max_len), generator=g)
    b["click"] = torch.randint(0, 2, (batch_size,), generator=g)
    return Schema(groups, SCHEMA.labels), b


def test_sim_hard_search_memory_stays_bounded_on_a_2000_long_window():
    """Forward and backward on 256 rows × 2,000 behaviours: no float tensor as large as even two floats per
    behaviour ever exists, let alone the (B, 2000, D) embedding of the window; soft search does make one."""
    batch_size, length = 256, 2000
    schema, b = _long_window_batch(batch_size, length)
    bound = 2 * batch_size * length  # one (B, L) float row of scores is fine; (B, L, D) is not
    torch.manual_seed(0)
    hard = SIM(schema, SIMConfig(top_k=50))
    with _LargestFloat() as seen:
        logits, auxiliary = hard.logits_and_auxiliary_loss(b)
        F.binary_cross_entropy_with_logits(logits, b["click"].float()).backward()
    assert logits.shape == (batch_size,) and torch.isfinite(logits).all()
    assert seen.largest[0] < bound, seen.largest
    # the check can fail: soft search embeds the whole window (with its small GSU table, 2 × gsu_dim wide)
    soft = SIM(schema, SIMConfig(search="soft", top_k=50, gsu_dim=4))
    with _LargestFloat() as seen_soft:
        soft(b)
    assert seen_soft.largest[1] == (batch_size, length, 8)


# --- ONNX -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build,groups",
    [
        (lambda: BST(SCHEMA, BSTConfig()), ["user", "item", "behavior"]),
        (lambda: SIM(SCHEMA, SIMConfig(top_k=4)), ["user", "item", "behavior", "long"]),
        (lambda: SIM(SCHEMA, SIMConfig(search="soft", top_k=4)), ["user", "item", "behavior", "long"]),
        (lambda: SIM(SCHEMA, SIMConfig(top_k=50)), ["user", "item", "behavior", "long"]),  # k beyond the window
    ],
    ids=["bst", "sim_hard", "sim_soft", "sim_k_capped"],
)
def test_onnx_parity(build, groups, tmp_path):
    torch.manual_seed(0)
    check_onnx_parity(build().eval(), onnx_inputs(groups), tmp_path / "model.onnx")
