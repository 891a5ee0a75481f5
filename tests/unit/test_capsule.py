"""Multi-interest layers (capsule routing, self-attentive interests, interest read-outs) and the
MIND / ComiRec-DR / ComiRec-SA models built on them: reference values, padding, routing logits
that are never trained, the dynamic interest number, ONNX parity of both towers."""

import math

import pytest
import torch

from rechub_core.export import export_onnx, parity
from rechub_core.features import Schema, SequenceFeature, SparseFeature
from rechub_core.layers import (
    CapsuleRouting,
    SelfAttentiveInterests,
    label_aware_attention,
    nearest_interest,
    squash,
)
from rechub_core.models.matching.comirec_dr import ComiRecDR, ComiRecDRConfig
from rechub_core.models.matching.comirec_sa import ComiRecSA, ComiRecSAConfig
from rechub_core.models.matching.mind import MIND, MINDConfig, active_interests

B, L, D, K = 4, 6, 5, 3
# left-padded: row 0 full, row 1 two padding positions, row 2 one real item, row 3 all padding
MASK = torch.tensor([[1] * 6, [0, 0, 1, 1, 1, 1], [0, 0, 0, 0, 0, 1], [0] * 6]).bool()


def inputs(seed: int = 0) -> torch.Tensor:
    return torch.randn(B, L, D, generator=torch.Generator().manual_seed(seed))


def routing(shared: bool, iterations: int = 3) -> CapsuleRouting:
    torch.manual_seed(0)
    return CapsuleRouting(D, D, num_interests=K, max_len=L, iterations=iterations, shared=shared)


# ---- squash ----


def test_squash_hand_values_and_zero():
    x = torch.tensor([[3.0, 4.0], [0.0, 0.0]], requires_grad=True)
    out = squash(x)
    torch.testing.assert_close(out[0], torch.tensor([25 / 26 * 0.6, 25 / 26 * 0.8]))
    assert (out[1] == 0).all()
    out.sum().backward()
    assert torch.isfinite(x.grad).all()  # also at 0


# ---- capsule routing ----


def reference_routing(layer: CapsuleRouting, x: torch.Tensor, mask: torch.Tensor, active=None) -> torch.Tensor:
    """Dynamic routing written out per row, over the row's valid behaviours only."""
    out = torch.zeros(x.shape[0], layer.num_interests, D)
    for r in range(x.shape[0]):
        keep = mask[r].nonzero().flatten()
        if len(keep) == 0:
            continue
        interests = range(layer.num_interests) if active is None else active[r].nonzero().flatten().tolist()
        u_hat = {j: layer.predictions(x[r : r + 1])[0, 0 if layer.shared else j][keep] for j in interests}  # (n, D)
        b = {j: layer.initial_logits[j, layer.max_len - x.shape[1] :][keep].clone() for j in interests}  # (n,)
        for _ in range(layer.iterations):
            logits = torch.stack([b[j] for j in interests])  # (K', n)
            w = torch.softmax(logits, dim=0)
            caps = {j: squash((w[a].unsqueeze(-1) * u_hat[j]).sum(0)) for a, j in enumerate(interests)}
            b = {j: b[j] + u_hat[j] @ caps[j] for j in interests}
        for j in interests:
            out[r, j] = caps[j]
    return out


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("iterations", [1, 3])
def test_routing_matches_a_per_row_reference(shared, iterations):
    layer, x = routing(shared, iterations), inputs()
    with torch.no_grad():
        out = layer(x, MASK)
        assert out.shape == (B, K, D)
        torch.testing.assert_close(out, reference_routing(layer, x, MASK), rtol=1e-5, atol=1e-6)
        assert (out[3] == 0).all()  # no behaviours: no interests


def test_routing_with_an_interest_mask_shares_behaviours_among_active_capsules_only():
    layer, x = routing(shared=True), inputs()
    active = torch.tensor([[True, True, True], [True, True, False], [True, False, False], [True, False, False]])
    with torch.no_grad():
        out = layer(x, MASK, active)
        torch.testing.assert_close(out, reference_routing(layer, x, MASK, active), rtol=1e-5, atol=1e-6)
        assert (out[~active] == 0).all()
        # one active capsule takes every behaviour with weight 1
        torch.testing.assert_close(out[2, 0], squash(layer.bilinear(x[2, 5])))


def test_mind_routing_starts_from_fixed_distinct_logits_and_dr_from_zero():
    a, b = routing(shared=True), routing(shared=True)
    assert torch.equal(a.initial_logits, b.initial_logits)  # deterministic
    assert a.initial_logits.shape == (K, L) and a.initial_logits.std() > 0.3
    assert (routing(shared=False).initial_logits == 0).all()
    with torch.no_grad():  # shared map, distinct start: the capsules differ
        out = a(inputs(), MASK)
    assert not torch.allclose(out[0, 0], out[0, 1])


@pytest.mark.parametrize("shared", [True, False])
def test_routing_logits_are_not_trained(shared):
    layer = routing(shared)
    names = {n for n, _ in layer.named_parameters()}
    assert names == ({"bilinear.weight"} if shared else {"bilinear"})
    assert "initial_logits" in dict(layer.named_buffers()) and not layer.initial_logits.requires_grad
    before = layer.initial_logits.clone()
    optimizer = torch.optim.SGD(layer.parameters(), lr=1.0)
    x = inputs().requires_grad_(True)
    layer(x, MASK).pow(2).sum().backward()
    optimizer.step()
    assert torch.equal(layer.initial_logits, before)
    assert torch.isfinite(x.grad).all() and all(torch.isfinite(p.grad).all() for p in layer.parameters())
    assert (x.grad[~MASK] == 0).all()  # padding behaviours get no weight, hence no gradient


@pytest.mark.parametrize("shared", [True, False])
def test_routing_padding_never_leaks_and_shorter_windows_agree(shared):
    layer, x = routing(shared), inputs()
    with torch.no_grad():
        before = layer(x, MASK)
        noisy = torch.where(MASK.unsqueeze(-1), x, 100 * inputs(seed=1))  # (B, L, D)
        torch.testing.assert_close(layer(noisy, MASK), before, rtol=0, atol=1e-6)
        # rows 1-3 start with two padding positions: dropping them changes nothing
        torch.testing.assert_close(layer(x[1:, 2:], MASK[1:, 2:]), before[1:], rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="max_len"):
        layer(torch.randn(1, L + 1, D), torch.ones(1, L + 1, dtype=torch.bool))


# ---- self-attentive interests ----


def self_attentive() -> SelfAttentiveInterests:
    torch.manual_seed(0)
    layer = SelfAttentiveInterests(D, num_interests=K, attention_dim=7, max_len=L)
    with torch.no_grad():
        layer.positions.weight.normal_()  # make positions matter in the reference check
    return layer


def test_self_attentive_matches_the_paper_formula_on_valid_positions():
    layer, x = self_attentive(), inputs()
    with torch.no_grad():
        out = layer(x, MASK)
        assert out.shape == (B, K, D)
        for r in range(B):
            keep = MASK[r].nonzero().flatten()
            if len(keep) == 0:
                assert (out[r] == 0).all()
                continue
            h = x[r, keep] + layer.positions.weight[keep]  # (n, D): H^T
            a = torch.softmax(layer.w2.weight @ torch.tanh(layer.w1.weight @ h.T), dim=-1)  # (K, n)
            torch.testing.assert_close(out[r], a @ h, rtol=1e-5, atol=1e-6)


def test_self_attentive_padding_never_leaks_and_empty_rows_are_finite():
    layer, x = self_attentive(), inputs()
    before = layer(x, MASK)
    noisy = torch.where(MASK.unsqueeze(-1), x, 100 * inputs(seed=1))  # (B, L, D)
    torch.testing.assert_close(layer(noisy, MASK), before, rtol=0, atol=1e-6)
    attention = layer.attention(x, MASK)  # (B, K, L)
    torch.testing.assert_close(attention.sum(-1)[:3], torch.ones(3, K))
    assert (attention[~MASK.unsqueeze(1).expand(-1, K, -1)] == 0).all()
    x = x.requires_grad_(True)
    layer(x, torch.zeros(B, L, dtype=torch.bool)).sum().backward()
    assert torch.isfinite(x.grad).all() and all(torch.isfinite(p.grad).all() for p in layer.parameters())


# ---- interest read-outs ----

INTERESTS = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]])  # (1, 3, 2)
TARGET = torch.tensor([[2.0, 1.0]])  # scores 2, 1, -3


def test_label_aware_attention_hand_values():
    w = torch.softmax(torch.tensor([2.0, 1.0, -3.0]), dim=0)
    torch.testing.assert_close(label_aware_attention(INTERESTS, TARGET, 1.0)[0], w @ INTERESTS[0])
    # p = 2 keeps the sign: -3 -> -9, not 9
    w2 = torch.softmax(torch.tensor([4.0, 1.0, -9.0]), dim=0)
    torch.testing.assert_close(label_aware_attention(INTERESTS, TARGET, 2.0)[0], w2 @ INTERESTS[0])
    # leaving the first interest out
    active = torch.tensor([[False, True, True]])
    w3 = torch.softmax(torch.tensor([1.0, -3.0]), dim=0)
    torch.testing.assert_close(label_aware_attention(INTERESTS, TARGET, 1.0, active)[0], w3 @ INTERESTS[0, 1:])


def test_label_aware_attention_at_large_p_is_the_nearest_interest():
    g = torch.Generator().manual_seed(0)
    interests, target = 3 * torch.randn(8, 4, 6, generator=g), torch.randn(8, 6, generator=g)
    hard = nearest_interest(interests, target)
    torch.testing.assert_close(label_aware_attention(interests, target, 50.0), hard, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(label_aware_attention(interests, target, 1.0), hard, atol=1e-2)
    # p = inf is the limit exactly, also where every score is below 1 (a finite p would go uniform there)
    small = interests / 100
    torch.testing.assert_close(label_aware_attention(small, target, math.inf), nearest_interest(small, target))
    assert not torch.allclose(label_aware_attention(small, target, 50.0), nearest_interest(small, target))
    # and it leaves inactive interests out: scores 2, 1, -3 without the first -> the second
    active = torch.tensor([[False, True, True]])
    torch.testing.assert_close(label_aware_attention(INTERESTS, TARGET, math.inf, active), INTERESTS[:, 1])


def test_nearest_interest_picks_the_largest_inner_product_and_routes_gradient_to_it():
    interests = INTERESTS.clone().requires_grad_(True)
    out = nearest_interest(interests, torch.tensor([[-1.0, 3.0]]))  # scores -1, 3, -2
    torch.testing.assert_close(out, torch.tensor([[0.0, 1.0]]))
    out.sum().backward()
    assert interests.grad[0, 1].abs().sum() > 0 and interests.grad[0, [0, 2]].abs().sum() == 0


# ---- the models ----

HIST_LEN, VOCAB = 6, 30
SCHEMA = Schema(
    {
        "user": (SparseFeature("gender", 3), SequenceFeature("hist", VOCAB, HIST_LEN, shares="item_id")),
        "item": (SparseFeature("item_id", VOCAB),),
    }
)


def user_batch(seed: int = 0, rows: int = 6) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    hist = torch.randint(1, VOCAB, (rows, HIST_LEN), generator=g)
    lengths = torch.tensor([0, 1, 2, 4, 5, 6] * rows)[:rows]  # (rows,)
    hist = hist * (torch.arange(HIST_LEN) >= HIST_LEN - lengths.unsqueeze(1))  # left-padded
    return {"gender": torch.randint(0, 3, (rows,), generator=g), "hist": hist}


def test_active_interests_follow_log2_of_the_history_length():
    counts = torch.tensor([0, 1, 2, 3, 4, 7, 8, 15, 16, 100])
    mask = torch.arange(100) < counts.unsqueeze(1)  # (10, 100)
    expected = [max(1, min(4, math.floor(math.log2(n)))) if n else 1 for n in counts.tolist()]
    assert active_interests(mask, 4).sum(1).tolist() == expected
    assert active_interests(mask, 4)[:, 0].all()


def test_mind_inactive_interests_copy_the_first_and_attention_counts_it_once():
    torch.manual_seed(0)
    model = MIND(SCHEMA, MINDConfig(embed_dim=8, num_interests=3, hidden_dims=[16])).eval()
    batch = user_batch()
    with torch.no_grad():
        user = model.user_embedding(batch)  # (6, 3, 8); history lengths 0, 1, 2, 4, 5, 6
        active = active_interests(batch["hist"] > 0, 3)
        assert active.sum(1).tolist() == [1, 1, 1, 2, 2, 2]
        copies = (user == user[:, :1]).all(-1)  # (6, 3)
        assert torch.equal(copies[:, 1:], ~active[:, 1:])
        target = torch.randn(6, 8)
        expected = label_aware_attention(user, target, model.config.pow_p, active)
        torch.testing.assert_close(model.interest_for(user, target), expected)
        model.config.pow_p = 1.0  # soft attention too counts the copies once
        torch.testing.assert_close(model.interest_for(user, target), label_aware_attention(user, target, 1.0, active))
        # without the dynamic number every slot is its own interest
        torch.manual_seed(0)
        fixed = MIND(SCHEMA, MINDConfig(embed_dim=8, num_interests=3, hidden_dims=[16], dynamic_interests=False))
        user = fixed.eval().user_embedding(batch)
        assert not (user[1:, 1:] == user[1:, :1]).all(-1).any()


def test_mind_profile_features_reach_every_interest():
    torch.manual_seed(0)
    model = MIND(SCHEMA, MINDConfig(embed_dim=8, num_interests=3, hidden_dims=[16], dynamic_interests=False)).eval()
    batch = user_batch()
    with torch.no_grad():
        before = model.user_embedding(batch)
        after = model.user_embedding(dict(batch, gender=(batch["gender"] + 1) % 3))
    assert ((before - after).abs().sum(-1) > 0).all()


def test_mind_profile_leaves_user_id_out_unless_asked_and_user_vectors_take_either_sign():
    schema = Schema({"user": (SparseFeature("user_id", 5), *SCHEMA.groups["user"]), "item": SCHEMA.groups["item"]})
    batch = dict(user_batch(), user_id=torch.arange(6) % 5)
    for with_id in (False, True):
        torch.manual_seed(0)
        model = MIND(schema, MINDConfig(embed_dim=8, num_interests=3, profile_user_id=with_id)).eval()
        with torch.no_grad():
            before = model.user_embedding(batch)
            after = model.user_embedding(dict(batch, user_id=(batch["user_id"] + 1) % 5))
        assert torch.equal(before, after) != with_id
        assert (before < 0).any()  # linear last layer: no ReLU on the user vectors


def test_configs_reject_bad_values():
    with pytest.raises(ValueError, match="pow_p"):
        MINDConfig(pow_p=0.5)
    with pytest.raises(ValueError, match="num_interests"):
        MINDConfig(num_interests=0)
    with pytest.raises(ValueError, match="hidden_dims"):
        MINDConfig(hidden_dims=[0])
    with pytest.raises(ValueError, match="routing_iterations"):
        ComiRecDRConfig(routing_iterations=0)
    with pytest.raises(ValueError, match="attention_dim"):
        ComiRecSAConfig(attention_dim=0)


def test_comirec_interest_for_is_the_nearest_interest():
    torch.manual_seed(0)
    for model in (ComiRecDR(SCHEMA, ComiRecDRConfig(embed_dim=8)), ComiRecSA(SCHEMA, ComiRecSAConfig(embed_dim=8))):
        user = torch.randn(5, 4, 8)
        target = torch.randn(5, 8)
        picked = model.interest_for(user, target)
        best = (user @ target.unsqueeze(-1)).squeeze(-1).argmax(1)
        torch.testing.assert_close(picked, user[torch.arange(5), best])


MODELS = {
    "mind": lambda: MIND(SCHEMA, MINDConfig(embed_dim=8, num_interests=3, hidden_dims=[16])),
    "comirec_dr": lambda: ComiRecDR(SCHEMA, ComiRecDRConfig(embed_dim=8, num_interests=3)),
    "comirec_sa": lambda: ComiRecSA(SCHEMA, ComiRecSAConfig(embed_dim=8, num_interests=3, attention_dim=16)),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_both_towers_export_to_onnx(name, tmp_path):
    torch.manual_seed(0)
    model = MODELS[name]().eval()
    users, other = user_batch(0), user_batch(1, rows=9)  # another batch size: the batch axis is dynamic
    export_onnx(model, model.user_embedding, users, tmp_path / "user.onnx", output_name="user")
    assert model.user_embedding(other).shape == (9, 3, 8)
    assert parity(tmp_path / "user.onnx", model.user_embedding, other) < 1e-4
    items = {"item_id": torch.arange(1, 11)}
    export_onnx(model, model.item_embedding, items, tmp_path / "item.onnx", output_name="item")
    assert parity(tmp_path / "item.onnx", model.item_embedding, {"item_id": torch.arange(3, 30)}) < 1e-4
