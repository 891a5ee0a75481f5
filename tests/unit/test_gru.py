"""GRUEncoder on its own against nn.GRU row by row; NARM's attention by hand; ONNX parity of GRU4Rec and NARM."""

import pytest
import torch

from rechub_core.export import export_onnx, parity
from rechub_core.features import Schema, SequenceFeature, SparseFeature
from rechub_core.layers import GRUEncoder
from rechub_core.models.matching.gru4rec import GRU4Rec, GRU4RecConfig
from rechub_core.models.matching.narm import NARM, NARMConfig

B, L, D, H = 5, 6, 4, 8
# left-padded: full, two padding positions, one real item, all padding, five real items
MASK = torch.tensor([[1] * 6, [0, 0, 1, 1, 1, 1], [0, 0, 0, 0, 0, 1], [0] * 6, [0, 1, 1, 1, 1, 1]]).bool()


def encoder(num_layers: int = 1) -> GRUEncoder:
    torch.manual_seed(0)
    return GRUEncoder(D, H, num_layers=num_layers, dropout=0.3).eval()


def inputs(seed: int = 0) -> torch.Tensor:
    return torch.randn(B, L, D, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("num_layers", [1, 2])
def test_states_equal_nn_gru_on_each_rows_real_items(num_layers):
    enc, x = encoder(num_layers), inputs()
    states, last = enc(x, MASK)
    assert states.shape == (B, L, H) and last.shape == (B, H)
    for row in range(B):
        real = x[row, MASK[row]]  # (n, D)
        if len(real) == 0:
            continue
        expected, _ = enc.gru(real.unsqueeze(0))  # (1, n, H): the row alone, no padding at all
        torch.testing.assert_close(states[row, MASK[row]], expected[0], rtol=0, atol=1e-6)
        torch.testing.assert_close(last[row], expected[0, -1], rtol=0, atol=1e-6)


def test_padding_content_has_no_effect_and_empty_rows_give_zeros():
    enc, x = encoder(2), inputs()
    states, last = enc(x, MASK)
    noisy = torch.where(MASK.unsqueeze(-1), x, 100 * inputs(seed=1))  # (B, L, D): other padding content
    states2, last2 = enc(noisy, MASK)
    torch.testing.assert_close(states2, states, rtol=0, atol=1e-6)
    torch.testing.assert_close(last2, last, rtol=0, atol=1e-6)
    assert (states[~MASK] == 0).all()
    assert (states[MASK].abs().sum(-1) > 0).all()
    assert (last[3] == 0).all()  # the empty row
    # a plain nn.GRU on the left-padded rows would differ: padding reaches the real states
    plain, _ = enc.gru(noisy)
    assert not torch.allclose(plain[1, -1], last[1], atol=1e-3)


def test_step_by_step_equals_the_whole_sequence():
    enc, x = encoder(2), inputs()
    _, last = enc(x[:1], MASK[:1])
    h = enc.initial_state(1)
    assert h.shape == (2, 1, H) and (h == 0).all()
    for t in range(L):
        out, h = enc.step(x[:1, t], h)
    torch.testing.assert_close(out, last, rtol=0, atol=1e-6)


def test_gradients_are_finite_and_skip_padding():
    enc = encoder().train()
    x = inputs().requires_grad_(True)
    states, last = enc(x, MASK)
    (states.sum() + last.sum()).backward()
    assert torch.isfinite(x.grad).all()
    assert (x.grad[~MASK] == 0).all()
    assert (x.grad[MASK].abs().sum(-1) > 0).all()


def test_encoder_exports_to_onnx(tmp_path):
    enc = encoder(2)
    example = {"x": inputs(), "mask": MASK}

    def fn(batch):
        states, last = enc(batch["x"], batch["mask"])
        return torch.cat([states.flatten(1), last], dim=1)

    export_onnx(enc, fn, example, tmp_path / "gru.onnx", output_name="out")
    other = {"x": inputs(seed=3)[:3], "mask": MASK[[3, 2, 1]]}  # another batch size and masks
    assert parity(tmp_path / "gru.onnx", fn, other) < 1e-5


N_ITEMS = 20


def schema() -> Schema:
    return Schema({"user": (SequenceFeature("hist", N_ITEMS, L, shares="item_id"),),
                   "item": (SparseFeature("item_id", N_ITEMS),)})


def history(seed: int = 0) -> torch.Tensor:
    return torch.randint(1, N_ITEMS, (B, L), generator=torch.Generator().manual_seed(seed)) * MASK  # (B, L)


def test_narm_user_vector_is_the_bilinear_decoder_of_global_and_local_encoders():
    torch.manual_seed(0)
    model = NARM(schema(), NARMConfig(embed_dim=D, hidden_dim=H)).eval()
    ids = history()
    user = model.user_embedding({"hist": ids})
    table = model.embedding.table.weight
    for row in range(B):
        real = ids[row][ids[row] > 0]
        if len(real) == 0:
            assert torch.allclose(user[row], torch.zeros(D))
            continue
        states, _ = model.encoder.gru(table[real].unsqueeze(0))  # (1, n, H)
        states = states[0]
        h_t = states[-1]
        # alpha_tj = v^T sigmoid(A1 h_t + A2 h_j), one by one, not normalised
        v, a1, a2 = model.v.weight[0], model.a1.weight, model.a2.weight
        alpha = torch.stack([v @ torch.sigmoid(a1 @ h_t + a2 @ h) for h in states])
        c = torch.cat([h_t, (alpha.unsqueeze(1) * states).sum(0)])  # [c_g; c_l]
        torch.testing.assert_close(user[row], model.bilinear.weight @ c, rtol=0, atol=1e-5)
    # padding positions get no attention weight
    states, last = model.encoder(table[ids], ids > 0)
    assert (model.attention(states, last, ids > 0)[~MASK] == 0).all()


def test_narm_dropouts_act_in_training_only():
    torch.manual_seed(0)
    model = NARM(schema(), NARMConfig(embed_dim=D, hidden_dim=H))
    batch = {"hist": history()}
    assert not torch.allclose(model.train().user_embedding(batch), model.eval().user_embedding(batch))
    assert torch.equal(model.user_embedding(batch), model.user_embedding(batch))
    with pytest.raises(ValueError, match="decoder_dropout"):
        NARMConfig(decoder_dropout=1.0)


@pytest.mark.parametrize(
    "build",
    [
        lambda: GRU4Rec(schema(), GRU4RecConfig(embed_dim=D, hidden_dim=H, num_layers=2)),
        lambda: GRU4Rec(schema(), GRU4RecConfig(embed_dim=D, hidden_dim=D, tied_embeddings=True)),
        lambda: NARM(schema(), NARMConfig(embed_dim=D, hidden_dim=H)),
    ],
    ids=["gru4rec", "gru4rec-tied", "narm"],
)
def test_towers_export_to_onnx(build, tmp_path):
    torch.manual_seed(0)
    model = build().eval()
    users = {"hist": history()}
    export_onnx(model, model.user_embedding, users, tmp_path / "user.onnx", output_name="user")
    assert parity(tmp_path / "user.onnx", model.user_embedding, {"hist": history(seed=1)[:3]}) < 1e-4
    items = {"item_id": torch.arange(1, 7)}
    export_onnx(model, model.item_embedding, items, tmp_path / "item.onnx", output_name="item")
    assert parity(tmp_path / "item.onnx", model.item_embedding, {"item_id": torch.arange(N_ITEMS)}) < 1e-4
