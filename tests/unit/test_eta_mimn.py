"""SimHash and the NTM memory by hand; ETA's and MIMN's shapes, gradients, padding, configurations,
ONNX parity, ETA's bounded memory on a 2,000-long window and MIMN's utilisation loss."""

import math

import pytest
import torch
import torch.nn.functional as F

from rechub_core.layers.ntm import NTMMemory, NTMState, content_addressing, read, write
from rechub_core.layers.simhash import SimHash
from rechub_core.models.ranking.eta import ETA, ETAConfig
from rechub_core.models.ranking.mimn import MIMN, MemoryInduction, MIMNConfig
from tests.unit.test_bst_sim import _LargestFloat, _long_window_batch  # (B, L) windows; the largest float made
from tests.unit.checks import check_logits_and_gradients, check_onnx_parity, onnx_inputs, shift_padding_rows
from tests.unit.test_models import LONG, SCHEMA, B, batch

GROUPS = ["user", "item", "behavior", "long"]


def _set(param: torch.Tensor, value) -> None:
    with torch.no_grad():
        param.copy_(torch.as_tensor(value, dtype=param.dtype).reshape(param.shape))


def _loss_and_gradients(model, b, auxiliary=None):
    assert torch.isfinite(check_logits_and_gradients(model, b, auxiliary)).all()


ALIGNED = {"hist": ("hist_category", "hist_dt"), "long_item": ("long_category", "long_dt")}


def _padding_changed(b: dict[str, torch.Tensor], sequences=("hist", "long_item")) -> dict[str, torch.Tensor]:
    """``b`` with other ids at every padding position of the columns aligned with ``sequences``' first ones."""
    g = torch.Generator().manual_seed(9)
    out = dict(b)
    for first in sequences:
        others = ALIGNED[first]
        pad = b[first] == 0
        for name in others:
            out[name] = torch.where(pad, torch.randint(1, 4, b[name].shape, generator=g), b[name])
    return out


def _shift_padding_rows(model) -> None:
    """Move the embedding rows of id 0 (the padding of the item and category tables) far away (a batch's
    targets must then have real categories: id 0 is also the target's unknown category)."""
    shift_padding_rows(model.inputs.embedding, "item_id", "category")


# --- SimHash -------------------------------------------------------------------------------


def _hash() -> SimHash:
    h = SimHash(2, bits=3)
    _set(h.projection, [[1.0, 0.0, 1.0], [0.0, 1.0, -1.0]])  # bits: x1 > 0, x2 > 0, x1 > x2
    return h


def test_signatures_are_the_sign_bits_of_the_projection():
    h = _hash()
    x = torch.tensor([[2.0, -1.0], [-1.0, 3.0], [1.0, 1.0], [0.0, 0.0]])
    # projections [2, -1, 3], [-1, 3, -4], [1, 1, 0], [0, 0, 0]; a zero projection is a 0 bit
    expected = [[True, False, True], [False, True, False], [True, True, False], [False, False, False]]
    assert h.signatures(x).tolist() == expected


def test_hamming_distances_by_hand():
    h = _hash()
    target = torch.tensor([[2.0, -1.0]])  # bits 1 0 1
    behaviors = torch.tensor([[[3.0, -2.0], [-1.0, 3.0], [1.0, 1.0], [-1.0, -2.0]]])
    # bits 101 (0 differ), 010 (3), 110 (2), 001 (1)
    assert h.distances(target, behaviors).tolist() == [[0.0, 3.0, 2.0, 1.0]]


def test_top_k_takes_the_smallest_distances_ties_to_the_most_recent_never_padding():
    h = _hash()
    target = torch.tensor([[2.0, -1.0], [2.0, -1.0]])  # bits 101
    row = [[2.0, -1.0], [-1.0, 3.0], [1.0, 1.0], [3.0, -2.0], [-1.0, -2.0], [1.0, 2.0]]
    behaviors = torch.tensor([row, row])  # bits 101, 010, 110, 101, 001, 110
    assert h.distances(target, behaviors)[0].tolist() == [0.0, 3.0, 2.0, 0.0, 1.0, 2.0]
    mask = torch.tensor([[False, True, True, True, True, True], [False, False, False, False, True, True]])
    index, valid = h(target, behaviors, mask, k=4)
    # row 0: position 0 is padding (distance 0, never taken); 3 (distance 0), 4 (1), then the two at 2, newest first
    assert index[0].tolist() == [3, 4, 5, 2] and valid[0].all()
    # row 1: its two real behaviours, nearest first; the other two picks are padding, and flagged so
    assert index[1, :2].tolist() == [4, 5] and valid[1].tolist() == [True, True, False, False]
    assert not mask[1, index[1, 2:]].any()
    # k is capped at the length
    assert h(target, behaviors, mask, k=50)[0].shape == (2, 6)


def test_projection_is_a_fixed_seeded_buffer_without_gradient():
    a, b, c = SimHash(8, 16, seed=0), SimHash(8, 16, seed=0), SimHash(8, 16, seed=1)
    assert torch.equal(a.projection, b.projection) and not torch.equal(a.projection, c.projection)
    assert list(a.parameters()) == [] and "projection" in a.state_dict()  # saved with the model, never trained
    x = torch.randn(3, 8, requires_grad=True)
    index, valid = a(x, x.unsqueeze(1).expand(-1, 5, -1), torch.ones(3, 5, dtype=torch.bool), k=2)
    assert not index.requires_grad and not valid.requires_grad


# --- ETA -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [ETAConfig(), ETAConfig(top_k=3, hash_bits=4, num_heads=1), ETAConfig(top_k=2, embed_dim=8, mlp_dims=[16])],
    ids=["default", "small", "two"],
)
def test_eta_shapes_loss_and_gradients(config):
    torch.manual_seed(0)
    _loss_and_gradients(ETA(SCHEMA, config), batch())


def test_eta_retrieves_the_nearest_behaviours_of_the_models_own_embeddings():
    torch.manual_seed(0)
    model = ETA(SCHEMA, ETAConfig(top_k=3, hash_bits=8)).eval()
    b = batch()
    target = model.inputs.target(b)
    index, valid = model.hash(target, model.inputs.sequence(b, 1)[0], b["long_item"] > 0, 3)
    retrieved, mask = model.retrieve(b, target)
    assert retrieved.shape == (B, 3, 2 * 16 + 16) and torch.equal(mask, valid)
    distances = model.hash.distances(target, model.inputs.sequence(b, 1)[0])  # (B, L)
    for row in range(B):
        real = (b["long_item"][row] > 0).nonzero().flatten()
        chosen = index[row][valid[row]]
        assert len(chosen) == min(3, len(real))
        # nothing left out is nearer than the farthest chosen one
        rest = [p for p in real.tolist() if p not in chosen.tolist()]
        if rest and len(chosen):
            assert distances[row, rest].min() >= distances[row, chosen].max()
    # the hash reads the embeddings being trained: moving the tables moves the signatures
    before = model.hash.signatures(model.inputs.sequence(b, 1)[0])
    with torch.no_grad():
        model.inputs.embedding.table.weight.mul_(-1)
    assert not torch.equal(model.hash.signatures(model.inputs.sequence(b, 1)[0]), before)


def test_eta_long_attention_reads_only_the_retrieved_behaviours():
    torch.manual_seed(0)
    model = ETA(SCHEMA, ETAConfig(top_k=2)).eval()
    b = batch()
    before = model(b)
    index, valid = model.hash(model.inputs.target(b), model.inputs.sequence(b, 1)[0], b["long_item"] > 0, 2)
    row = 4  # a full window of 12
    picked = set(index[row][valid[row]].tolist())
    other = next(p for p in range(LONG) if p not in picked)
    dt = b["long_dt"].clone()
    dt[row, other] = dt[row, other] % 16 + 1  # another time for a behaviour not retrieved: nothing changes
    torch.testing.assert_close(model(dict(b, long_dt=dt)), before, rtol=0, atol=0)
    dt[row, min(picked)] = dt[row, min(picked)] % 16 + 1  # a retrieved one's time does matter
    assert not torch.allclose(model(dict(b, long_dt=dt))[row], before[row])


def test_eta_padding_never_leaks():
    torch.manual_seed(0)
    model = ETA(SCHEMA, ETAConfig(top_k=4)).eval()
    b = dict(batch(), category=batch()["category"].clamp(min=1))
    before = model(b)
    torch.testing.assert_close(model(_padding_changed(b)), before, rtol=0, atol=1e-6)
    _shift_padding_rows(model)
    torch.testing.assert_close(model(b), before, rtol=0, atol=1e-6)
    # while both sequences' real behaviours matter
    assert not torch.allclose(model(dict(b, long_item=b["long_item"].flip(0))), before)
    assert not torch.allclose(model(dict(b, hist=b["hist"].flip(0))), before)


def test_eta_config_fields_shape_the_model():
    model = ETA(SCHEMA, ETAConfig(embed_dim=8, hash_bits=5, top_k=7, num_heads=3, mlp_dims=[32, 16]))
    assert model.hash.projection.shape == (16, 5) and model.top_k == 7  # item + category embeddings, 8 each
    assert model.long.num_heads == 3 and model.long.head_dim == 8 and model.short.key.in_features == 16 + 8
    assert [m.out_features for m in model.mlp.net if isinstance(m, torch.nn.Linear)] == [32, 16, 1]
    seeds = [ETA(SCHEMA, ETAConfig(hash_seed=s)).hash.projection for s in (0, 1)]
    assert not torch.equal(*seeds)
    b = batch()
    outputs = []
    for config in (ETAConfig(top_k=1), ETAConfig(top_k=6), ETAConfig(top_k=6, hash_bits=2)):
        torch.manual_seed(0)
        outputs.append(ETA(SCHEMA, config).eval()(b))
    assert not torch.allclose(outputs[0], outputs[1]) and not torch.allclose(outputs[1], outputs[2])


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"hash_bits": 0}, "hash_bits"),
        ({"top_k": 0}, "top_k"),
        ({"num_heads": 0}, "num_heads"),
        ({"embed_dim": 0}, "embed_dim"),
        ({"dropout": 1.0}, "dropout"),
        ({"mlp_dims": []}, "mlp_dims must not be empty"),
        ({"groups": ["user", "item", "behavior"]}, "groups must include \\['long'\\]"),
    ],
)
def test_bad_eta_config_raises(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ETAConfig(**kwargs)


def test_eta_onnx_parity(tmp_path):
    torch.manual_seed(0)
    check_onnx_parity(ETA(SCHEMA, ETAConfig(top_k=4)).eval(), onnx_inputs(GROUPS), tmp_path / "model.onnx")


def test_eta_memory_stays_bounded_on_a_2000_long_window():
    """256 rows × 2,000 behaviours, forward and backward: the window's (B, L, A*D) embedding, which the hash
    must read, is the largest tensor ever made (nothing like (B, L, L) or (B, L, m·D)), and backward keeps
    nothing of the window's length: only the top_k retrieved behaviours are recorded for gradients."""
    rows, length = 256, 2000
    schema, b = _long_window_batch(rows, length)
    torch.manual_seed(0)
    model = ETA(schema, ETAConfig(top_k=50))
    saved: list[tuple[int, ...]] = []

    def pack(t):
        saved.append(tuple(t.shape))
        return t

    with _LargestFloat() as sizes, torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        logits = model(b)
        F.binary_cross_entropy_with_logits(logits, torch.ones(rows)).backward()
    assert logits.shape == (rows,) and torch.isfinite(logits).all()
    item_dim = model.inputs.item_dim  # 2 × 16
    assert sizes.largest[0] == rows * length * item_dim, sizes.largest
    # backward keeps nothing as long as the window: the largest saved is a (B, k, heads × head_dim) projection
    assert not [s for s in saved if length in s], [s for s in saved if length in s]
    assert max(math.prod(s) for s in saved) == rows * 50 * 4 * 16
    assert model.inputs.embedding.table.weight.grad is not None


# --- the NTM memory --------------------------------------------------------------------------


def test_content_addressing_by_hand():
    memory = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]]])  # (1, 3, 2)
    key = torch.tensor([[2.0, 0.0]])
    strength = torch.tensor([[2.0]])
    # cosines 1, 0, 1/√2; weights softmax(2 · cos)
    logits = torch.tensor([2.0, 0.0, 2.0 / math.sqrt(2.0)])
    expected = logits.exp() / logits.exp().sum()
    torch.testing.assert_close(content_addressing(key, strength, memory)[0], expected)
    # strength 0: uniform
    torch.testing.assert_close(content_addressing(key, torch.zeros(1, 1), memory), torch.full((1, 3), 1 / 3))


def test_write_erases_then_adds_by_hand():
    memory = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])  # (1, 2, 2)
    w = torch.tensor([[0.5, 0.25]])
    erase = torch.tensor([[1.0, 0.0]])
    add = torch.tensor([[2.0, -4.0]])
    # slot 0: [1·(1 - 0.5), 2·1] + 0.5·[2, -4] = [1.5, 0]; slot 1: [3·0.75, 4] + 0.25·[2, -4] = [2.75, 3]
    torch.testing.assert_close(write(memory, w, erase, add), torch.tensor([[[1.5, 0.0], [2.75, 3.0]]]))


def test_read_is_the_weighted_sum_of_slots():
    memory = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]])
    torch.testing.assert_close(read(torch.tensor([[0.5, 0.5, 0.0]]), memory), torch.tensor([[2.0, 3.0]]))
    torch.testing.assert_close(read(torch.tensor([[0.0, 0.0, 1.0]]), memory), torch.tensor([[5.0, 6.0]]))


def test_rebalanced_write_weights_by_hand():
    ntm = NTMMemory(input_dim=2, memory_dim=2, slots=2, controller_dim=3)
    start = ntm.rebalance(torch.tensor([[0.7, 0.3]]), torch.zeros(1, 2), torch.ones(1, 1))
    assert torch.allclose(start, torch.tensor([[0.7, 0.3]]), atol=0.1)  # starts near the identity
    _set(ntm.transfer.weight, [[0.0, 0.0], [0.0, 0.0], [2.0, 0.0], [0.0, 0.0]])  # only P[1, 0]'s logit reads usage
    _set(ntm.transfer.bias, [0.0, 0.0, 0.0, 0.0])
    usage, steps = torch.tensor([[3.0, 1.0]]), torch.tensor([[2.0]])  # mean usage [1.5, 0.5]
    # P = [[1/2, 1/2], [e³/(e³+1), 1/(e³+1)]]; w̃ P with w̃ = [0.6, 0.4]
    p10 = math.exp(3.0) / (math.exp(3.0) + 1.0)
    expected = torch.tensor([[0.6 * 0.5 + 0.4 * p10, 0.6 * 0.5 + 0.4 * (1 - p10)]])
    torch.testing.assert_close(ntm.rebalance(torch.tensor([[0.6, 0.4]]), usage, steps), expected)


def test_ntm_step_composes_the_heads_and_padding_leaves_the_state_unchanged():
    torch.manual_seed(0)
    ntm = NTMMemory(input_dim=3, memory_dim=4, slots=3, controller_dim=5)
    state = ntm.initial_state(2)
    x = torch.randn(2, 3)
    state, _ = ntm.step(x, torch.tensor([True, True]), state)  # one real step, so the state is not the initial one
    new, out = ntm.step(torch.randn(2, 3), torch.tensor([True, False]), state)
    # the padded row: every part of the state is carried over exactly, and it neither reads nor writes
    for before, after in zip(state, new):
        assert torch.equal(after[1], before[1])
    assert (out.read_weights[1] == 0).all() and (out.write_weights[1] == 0).all()
    # the real row, step by step by the layer's functions
    x1 = torch.randn(1, 3)
    one = NTMState(*(t[:1] for t in state))
    stepped, out = ntm.step(x1, torch.tensor([True]), one)
    h = ntm.controller(torch.cat([x1, one.read], dim=-1), one.controller)
    heads = ntm.heads(h)
    rk, wk, e, a, s = heads[:, :4], heads[:, 4:8], heads[:, 8:12], heads[:, 12:16], F.softplus(heads[:, 16:])
    original = content_addressing(wk, s[:, 1:], one.memory)
    w = ntm.rebalance(original, one.usage + original, one.steps + 1)
    erased = one.memory * (1 - w.unsqueeze(-1) * torch.sigmoid(e).unsqueeze(1))  # M ⊙ (1 - w eᵀ)
    memory = erased + w.unsqueeze(-1) * torch.tanh(a).unsqueeze(1)  # + w aᵀ
    rw = content_addressing(rk, s[:, :1], memory)
    torch.testing.assert_close(stepped.memory, memory)
    torch.testing.assert_close(out.write_weights, w)
    torch.testing.assert_close(out.read_weights, rw)
    torch.testing.assert_close(stepped.read, (rw.unsqueeze(-1) * memory).sum(1))
    torch.testing.assert_close(stepped.usage, one.usage + original)
    assert stepped.steps.item() == one.steps.item() + 1
    torch.testing.assert_close(out.write_weights.sum(-1), torch.ones(1))
    torch.testing.assert_close(out.read_weights.sum(-1), torch.ones(1))


def test_memory_induction_updates_the_top_k_read_slots_only_at_real_steps():
    torch.manual_seed(0)
    miu = MemoryInduction(memory_dim=3, input_dim=2, top_k=2)
    channels, memory, x = torch.randn(2, 4, 3), torch.randn(2, 4, 3), torch.randn(2, 2)
    read_weights = torch.tensor([[0.1, 0.5, 0.05, 0.35], [0.4, 0.3, 0.2, 0.1]])
    out = miu(channels, memory, x, read_weights, torch.tensor([True, False]))
    changed = (out != channels).any(-1)
    assert changed.tolist() == [[False, True, False, True], [False, False, False, False]]
    # a chosen channel: one GRU step from its state, reading [M(i), e]
    expected = miu.gru(torch.cat([memory[0, 1], x[0]]).unsqueeze(0), channels[0, 1].unsqueeze(0))[0]
    torch.testing.assert_close(out[0, 1], expected)


# --- MIMN ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        MIMNConfig(),
        MIMNConfig(memory_slots=8, induction_top_k=8, memory_len=5),
        MIMNConfig(memory_slots=2, induction_top_k=1, controller_dim=8, utilization_weight=0.0),
    ],
    ids=["default", "all_channels_short", "small_no_regulariser"],
)
def test_mimn_shapes_loss_and_gradients(config):
    torch.manual_seed(0)
    model = MIMN(SCHEMA, config)
    b = batch()
    logits, auxiliary = model.logits_and_auxiliary_loss(b)
    assert auxiliary.shape == () and torch.isfinite(auxiliary) and auxiliary >= 0
    torch.testing.assert_close(model.eval()(b), model.logits_and_auxiliary_loss(b)[0])
    model.train()
    if config.utilization_weight == 0:
        assert auxiliary == 0
        _loss_and_gradients(model, b)
    else:
        _loss_and_gradients(model, b, model.logits_and_auxiliary_loss(b)[1])


def test_mimn_utilisation_loss_is_the_variance_of_each_rows_mean_write_weights():
    torch.manual_seed(0)
    model = MIMN(SCHEMA, MIMNConfig(utilization_weight=0.5)).eval()
    b = batch()
    # the write weights, step by step over the window
    ids = model.inputs.ids(b)
    behaviors, real = model.inputs.embed(ids), ids[0] > 0
    state, written = model.memory.initial_state(B), torch.zeros(B, 4)
    for t in range(LONG):
        state, out = model.memory.step(behaviors[:, t], real[:, t], state)
        written += out.write_weights
    share = written / real.sum(1, keepdim=True).clamp(min=1)  # (B, 4)
    expected = ((share - share.mean(1, keepdim=True)) ** 2).sum(1).mean()
    _, auxiliary = model.logits_and_auxiliary_loss(b)
    torch.testing.assert_close(auxiliary, 0.5 * expected)
    assert (written[0] == 0).all()  # the empty window writes nothing
    # the loss trains the transfer matrix W_g
    auxiliary.backward()
    assert model.memory.transfer.weight.grad.abs().sum() > 0


def test_mimn_reads_the_most_recent_memory_len_behaviours_and_padding_never_leaks():
    torch.manual_seed(0)
    model = MIMN(SCHEMA, MIMNConfig(memory_len=6)).eval()
    b = dict(batch(), category=batch()["category"].clamp(min=1))
    before = model(b)
    # (the short history is a plain field here, mean-pooled by FeatureEmbedding, each column by its own padding)
    torch.testing.assert_close(model(_padding_changed(b, ["long_item"])), before, rtol=0, atol=1e-6)
    _shift_padding_rows(model)
    torch.testing.assert_close(model(b), before, rtol=0, atol=1e-6)
    older, recent = b["long_item"].clone(), b["long_item"].clone()
    older[4:, :6] = older[4:, :6] % 20 + 1  # full windows: behaviours older than the last 6 do not matter
    torch.testing.assert_close(model(dict(b, long_item=older)), before, rtol=0, atol=0)
    recent[4:, 6] = recent[4:, 6] % 20 + 1  # the oldest of the last 6 does
    assert not torch.allclose(model(dict(b, long_item=recent))[4:], before[4:])


def test_mimn_config_fields_shape_the_model():
    model = MIMN(SCHEMA, MIMNConfig(embed_dim=8, memory_slots=6, controller_dim=10, induction_top_k=3))
    assert model.memory.memory.shape == (1, 6, 16) and model.memory.controller.hidden_size == 10
    assert model.induction.top_k == 3 and model.induction.gru.hidden_size == 16
    b = batch()
    outputs = {}
    for name, config in {
        "base": MIMNConfig(memory_len=12),
        "short": MIMNConfig(memory_len=3),
        "one_channel": MIMNConfig(memory_len=12, induction_top_k=1),
    }.items():
        torch.manual_seed(0)
        outputs[name] = MIMN(SCHEMA, config).eval()(b)
    assert not torch.allclose(outputs["base"], outputs["short"])
    assert not torch.allclose(outputs["base"], outputs["one_channel"])
    torch.manual_seed(0)
    light = MIMN(SCHEMA, MIMNConfig(utilization_weight=0.1)).logits_and_auxiliary_loss(b)[1]
    torch.manual_seed(0)
    heavy = MIMN(SCHEMA, MIMNConfig(utilization_weight=0.3)).logits_and_auxiliary_loss(b)[1]
    torch.testing.assert_close(heavy, 3 * light)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"memory_slots": 0}, "memory_slots"),
        ({"controller_dim": 0}, "controller_dim"),
        ({"memory_len": 0}, "memory_len"),
        ({"induction_top_k": 0}, "induction_top_k"),
        ({"memory_slots": 4, "induction_top_k": 5}, "cannot exceed memory_slots"),
        ({"utilization_weight": -0.1}, "utilization_weight"),
        ({"dropout": -0.1}, "dropout"),
        ({"groups": ["user", "item"]}, "groups must include \\['long'\\]"),
        ({"mlp_dims": []}, "mlp_dims must not be empty"),
    ],
)
def test_bad_mimn_config_raises(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MIMNConfig(**kwargs)


def test_mimn_onnx_parity(tmp_path):
    torch.manual_seed(0)
    check_onnx_parity(MIMN(SCHEMA, MIMNConfig(memory_len=8)).eval(), onnx_inputs(GROUPS), tmp_path / "model.onnx")
