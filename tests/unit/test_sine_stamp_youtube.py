"""YouTube DNN, STAMP and SINE: each model against a per-row reference of its paper's equations,
padding and empty histories, their distinctive mechanisms (YouTube DNN's averaged history, STAMP's
last real item, SINE's top-K concept activation and covariance regulariser), ONNX parity of both towers."""

import pytest
import torch
import torch.nn.functional as F

from rechub_core.export import export_onnx, parity
from rechub_core.features import DenseFeature, Schema, SequenceFeature, SparseFeature
from rechub_core.models.matching.sine import SINE, AttentionHeads, SINEConfig, masked_softmax
from rechub_core.models.matching.stamp import STAMP, STAMPConfig
from rechub_core.models.matching.youtube_dnn import YouTubeDNN, YouTubeDNNConfig

HIST_LEN, VOCAB, D = 6, 30, 8
SCHEMA = Schema(
    {
        "user": (
            SparseFeature("gender", 3),
            DenseFeature("age"),
            SequenceFeature("hist", VOCAB, HIST_LEN, shares="item_id"),
        ),
        "item": (SparseFeature("item_id", VOCAB), SparseFeature("category", 4), DenseFeature("price")),
    }
)
# the sequence models read only the history
SEQUENCE_ONLY = Schema({"user": (SCHEMA.groups["user"][2],), "item": SCHEMA.groups["item"]})


def user_batch(seed: int = 0, rows: int = 6) -> dict[str, torch.Tensor]:
    """Left-padded histories of lengths 0, 1, 2, 4, 5, 6, ... (row 0 empty), distinct items per row."""
    g = torch.Generator().manual_seed(seed)
    hist = torch.stack([torch.randperm(VOCAB - 1, generator=g)[:HIST_LEN] + 1 for _ in range(rows)])  # (rows, L)
    lengths = torch.tensor([0, 1, 2, 4, 5, 6] * rows)[:rows]  # (rows,)
    hist = hist * (torch.arange(HIST_LEN) >= HIST_LEN - lengths.unsqueeze(1))  # left-padded
    return {"gender": torch.randint(0, 3, (rows,), generator=g), "age": torch.randn(rows, generator=g), "hist": hist}


def pad_left(batch: dict[str, torch.Tensor], extra: int) -> dict[str, torch.Tensor]:
    return dict(batch, hist=F.pad(batch["hist"], (extra, 0)))


# ---- YouTube DNN ----


def youtube(**kwargs) -> YouTubeDNN:
    torch.manual_seed(0)
    return YouTubeDNN(SCHEMA, YouTubeDNNConfig(embed_dim=D, hidden_dims=[16], **kwargs)).eval()


def test_youtube_dnn_user_tower_is_relu_layers_over_features_and_the_averaged_history():
    model, batch = youtube(), user_batch()
    emb = model.inputs.embedding
    with torch.no_grad():
        rows = []
        for r in range(6):
            real = batch["hist"][r][batch["hist"][r] > 0]
            mean = emb.lookup("hist", real).mean(0) if len(real) else torch.zeros(D)  # Sec. 3.2: an average
            rows.append(torch.cat([emb.lookup("gender", batch["gender"][r]), mean, batch["age"][r : r + 1]]))
        expected = model.tower(torch.stack(rows))  # (6, D)
        user = model.user_embedding(batch)
    torch.testing.assert_close(user, expected)
    assert (user >= 0).all()  # the last layer is a ReLU layer too (Fig. 3)
    assert user.shape == (6, D)


def test_youtube_dnn_user_tower_ignores_padding_and_order_of_the_history():
    model, batch = youtube(), user_batch()
    with torch.no_grad():
        before = model.user_embedding(batch)
        torch.testing.assert_close(model.user_embedding(pad_left(batch, 3)), before)  # more padding
        shuffled = batch["hist"][:, torch.randperm(HIST_LEN, generator=torch.Generator().manual_seed(1))]
        torch.testing.assert_close(model.user_embedding(dict(batch, hist=shuffled)), before)  # a bag of items
        other = model.user_embedding(dict(batch, hist=batch["hist"].roll(1, dims=0)))
    assert not torch.allclose(other[1:], before[1:])
    assert torch.isfinite(before[0]).all()  # empty history


def test_youtube_dnn_item_vectors_are_the_history_table_rows():
    model = youtube()
    ids = torch.arange(1, VOCAB)
    items = {"item_id": ids, "category": torch.zeros_like(ids), "price": torch.zeros(len(ids))}
    with torch.no_grad():
        torch.testing.assert_close(model.item_embedding(items), model.inputs.embedding.lookup("hist", ids))
    assert model.inputs.embedding.offsets["hist"] == model.inputs.embedding.offsets["item_id"]
    assert "category" not in model.inputs.embedding.offsets  # the softmax is over video ids only


# ---- STAMP ----


def stamp() -> STAMP:
    torch.manual_seed(0)
    return STAMP(SEQUENCE_ONLY, STAMPConfig(embed_dim=D)).eval()


def stamp_reference(model: STAMP, hist: torch.Tensor) -> torch.Tensor:
    """Eq. 1-6 written out per row over its real items only."""
    out = []
    for row in hist:
        x = model.embedding.lookup("hist", row[row > 0])  # (n, D)
        if len(x) == 0:
            out.append(torch.tanh(model.cell_s.bias) * torch.tanh(model.cell_t.bias))
            continue
        x_t, m_s = x[-1], x.mean(0)
        alpha = torch.stack([model.w0(torch.sigmoid(model.w1(xi) + model.w2(x_t) + model.w3(m_s))) for xi in x])
        m_a = (alpha * x).sum(0)  # (D,)
        out.append(torch.tanh(model.cell_s(m_a)) * torch.tanh(model.cell_t(x_t)))
    return torch.stack(out)


def test_stamp_matches_the_paper_equations_per_row():
    model, batch = stamp(), user_batch()
    with torch.no_grad():
        user = model.user_embedding(batch)
        torch.testing.assert_close(user, stamp_reference(model, batch["hist"]))
        torch.testing.assert_close(model.user_embedding(pad_left(batch, 2)), user)  # more padding: the same
        # the item vector is x_i, the row of the table the session reads
        ids = torch.arange(1, VOCAB)
        torch.testing.assert_close(model.item_embedding({"item_id": ids}), model.embedding.lookup("hist", ids))


def test_stamp_user_vector_uses_the_last_real_item():
    model = stamp()
    hist = torch.tensor([[0, 0, 3, 5, 7, 9], [0, 0, 7, 3, 5, 9], [0, 0, 3, 5, 9, 7]])  # same items
    with torch.no_grad():
        user = model.user_embedding({"hist": hist})
        # same last item: order of the earlier ones does not matter (mean, un-normalised attention sum)
        torch.testing.assert_close(user[0], user[1])
        # another last item (x_t) changes the vector
        assert not torch.allclose(user[0], user[2], atol=1e-4)
        # with W_s = 0, h_s = tanh(b_s) for everyone: the vector is then h_t's alone, read from position -1
        model.cell_s.weight.zero_()
        user = model.user_embedding({"hist": torch.tensor([[0, 0, 3, 5, 7, 9], [0, 0, 0, 0, 1, 9], [0] * 5 + [9]])})
        h_t = torch.tanh(model.cell_t(model.embedding.lookup("item_id", torch.tensor(9))))
        torch.testing.assert_close(user, (torch.tanh(model.cell_s.bias) * h_t).expand(3, -1))


def test_stamp_empty_history_is_finite_and_gradients_skip_padding():
    model = stamp().train()
    hist = torch.tensor([[0] * 6, [0, 0, 0, 4, 2, 8]])
    user = model.user_embedding({"hist": hist})
    assert torch.isfinite(user).all()
    user.sum().backward()
    grad = model.embedding.table.weight.grad
    assert grad[0].abs().sum() == 0  # the padding row gets nothing
    assert grad[[4, 2, 8]].abs().sum(1).gt(0).all()


# ---- SINE ----

L_C, K, D_A = 12, 3, 5


def sine(**kwargs) -> SINE:
    torch.manual_seed(0)
    config = SINEConfig(embed_dim=D, num_concepts=L_C, num_interests=K, attention_dim=D_A, **kwargs)
    model = SINE(SEQUENCE_ONLY, config).eval()
    with torch.no_grad():  # make positions and the layer norms' affine maps matter in the reference checks
        model.positions.weight.normal_()
        for norm in (model.norm1, model.norm2, model.norm3, model.norm4):
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.normal_(std=0.3)
    return model


def heads_reference(layer: AttentionHeads, x: torch.Tensor) -> torch.Tensor:
    """``(n, D) -> (H, n)``: each head's own W_{h,1} and W_{h,2}, softmax over the n positions."""
    out = []
    for h in range(layer.heads):
        w1 = layer.w1.weight[h * layer.hidden : (h + 1) * layer.hidden]  # (d_a, D)
        out.append(torch.softmax(torch.tanh(x @ w1.T) @ layer.w2[h], dim=0))
    return torch.stack(out)


def sine_reference(model: SINE, hist: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """SINE's equations per row over its real positions only: the user vectors and the activated concepts."""
    users, concepts = [], []
    tau = model.config.temperature
    for row in hist:
        keep = (row > 0).nonzero().flatten()
        if len(keep) == 0:
            users.append(model.norm3.bias)
            concepts.append(None)
            continue
        x = model.embedding.lookup("hist", row[keep]) + model.positions.weight[keep]  # (n, D), full-length rows
        z = heads_reference(model.activation, x)[0] @ x  # (D,)
        s = model.concepts @ z  # (L_c,)
        top = s.topk(K)
        c_u = model.concepts[top.indices] * torch.sigmoid(top.values).unsqueeze(1)  # (K, D)
        p_k_t = torch.softmax(model.norm1(model.w3(x)) @ model.norm2(c_u).T, dim=1)  # (n, K)
        p_t_k = heads_reference(model.weighting, x)  # (K, n)
        phi = model.norm3(torch.stack([(p_k_t[:, k] * p_t_k[k]) @ x for k in range(K)]))  # (K, D)
        x_hat = p_k_t @ c_u  # (n, D)
        c_apt = model.norm4(heads_reference(model.aggregation, x_hat)[0] @ x_hat)  # (D,)
        users.append(torch.softmax(phi @ c_apt / tau, dim=0) @ phi)
        concepts.append(set(top.indices.tolist()))
    return torch.stack(users), concepts


def test_masked_softmax_hand_values_and_empty_rows():
    logits = torch.tensor([[1.0, 2.0, 3.0], [5.0, 0.0, 0.0]])
    mask = torch.tensor([[False, True, True], [False, False, False]])
    out = masked_softmax(logits, mask, dim=-1)
    e = torch.exp(torch.tensor([2.0, 3.0]))
    torch.testing.assert_close(out[0], torch.cat([torch.zeros(1), e / e.sum()]))
    assert (out[1] == 0).all()


def test_sine_matches_the_paper_equations_per_row():
    model, batch = sine(), user_batch()
    with torch.no_grad():
        user = model.user_embedding(batch)
        expected, _ = sine_reference(model, batch["hist"])
    assert user.shape == (6, D)
    torch.testing.assert_close(user, expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(user[0], model.norm3.bias)  # an empty history: phi_k = LayerNorm3(0)


def test_sine_activates_exactly_the_top_k_concepts():
    model, batch = sine(), user_batch()
    with torch.no_grad():
        x = model.sequence(batch["hist"])
        idx, c_u = model.activate(x, batch["hist"] > 0)
        _, expected = sine_reference(model, batch["hist"])
    assert idx.shape == (6, K) and c_u.shape == (6, K, D)
    for r in range(1, 6):
        assert len(set(idx[r].tolist())) == K and set(idx[r].tolist()) == expected[r]
    # C_u = C[idx] * sigmoid(s_u[idx]): each activated vector is a positive multiple of its concept
    gate = (c_u * model.concepts[idx]).sum(-1) / model.concepts[idx].pow(2).sum(-1)  # (6, K)
    assert ((gate > 0) & (gate < 1)).all()
    torch.testing.assert_close(c_u, model.concepts[idx] * gate.unsqueeze(-1))


def test_sine_only_the_activated_concepts_get_gradient_from_the_user_tower():
    model, batch = sine(), user_batch()
    rows = {k: v[3:] for k, v in batch.items()}  # three non-empty rows: at most 9 of 12 concepts active
    idx, _ = model.activate(model.sequence(rows["hist"]), rows["hist"] > 0)
    model.user_embedding(rows).pow(2).sum().backward()
    active = torch.zeros(L_C, dtype=torch.bool)
    active[idx.flatten()] = True
    assert (~active).any()
    grad = model.concepts.grad.abs().sum(1)  # (L_c,)
    assert (grad[~active] == 0).all() and (grad[active] > 0).all()


def test_sine_padding_never_leaks_and_empty_histories_are_finite():
    model, batch = sine(), user_batch()
    with torch.no_grad():
        before = model.user_embedding(batch)
        # rows 0-3 start with at least two padding positions: dropping them changes nothing
        shorter = {"hist": batch["hist"][:4, 2:]}
        torch.testing.assert_close(model.user_embedding(shorter), before[:4], rtol=1e-5, atol=1e-6)
        model.embedding.table.weight[0] += 5.0
        torch.testing.assert_close(model.user_embedding(batch), before)
    model = sine().train()
    empty = torch.zeros(3, HIST_LEN, dtype=torch.long)
    user = model.user_embedding({"hist": empty})
    assert torch.isfinite(user).all()
    user.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    with pytest.raises(ValueError, match="max_len"):
        model.user_embedding({"hist": torch.ones(1, HIST_LEN + 1, dtype=torch.long)})


def test_sine_temperature_sharpens_the_aggregation():
    batch = user_batch()
    with torch.no_grad():
        soft = sine(temperature=100.0).user_embedding(batch)
        model = sine(temperature=1e-4)
        sharp = model.user_embedding(batch)
    # tau -> 0 picks one interest phi_k; tau -> inf averages them: the two differ
    assert not torch.allclose(soft[1:], sharp[1:], atol=1e-3)


def test_sine_covariance_regulariser_hand_value_and_orthogonal_concepts():
    model = sine(covariance_weight=2.0)
    with torch.no_grad():
        model.concepts.zero_()
        model.concepts[:3, :3] = torch.tensor([[1.0, 2.0, 0.0], [0.0, 1.0, 1.0], [2.0, 0.0, 1.0]])
        # centred rows over D = 8 entries; M_ij = <c_i - mean_i, c_j - mean_j> / 8
        c = model.concepts - model.concepts.mean(1, keepdim=True)
        m = c @ c.T / D
        off = m.pow(2).sum() - m.diagonal().pow(2).sum()
        torch.testing.assert_close(model.regularization(), 2.0 * 0.5 * off)
        # rows 0 and 1 by hand: means 3/8 and 2/8
        m01 = sum((a - 3 / 8) * (b - 2 / 8) for a, b in zip([1, 2, 0, 0, 0, 0, 0, 0], [0, 1, 1, 0, 0, 0, 0, 0])) / 8
        torch.testing.assert_close(m[0, 1], torch.tensor(m01))
        # zero-mean orthogonal concepts: no covariance between them
        model.concepts.zero_()
        model.concepts[:4] = torch.tensor([[1.0, -1, 1, -1, 1, -1, 1, -1], [1, 1, -1, -1, 1, 1, -1, -1],
                                           [1, 1, 1, 1, -1, -1, -1, -1], [1, -1, -1, 1, 1, -1, -1, 1]])
        assert model.regularization().abs() < 1e-6
    assert sine(covariance_weight=0.0).regularization() == 0
    model = sine()
    model.regularization().backward()
    assert model.concepts.grad.abs().sum() > 0


def test_configs_reject_bad_values():
    with pytest.raises(ValueError, match="cannot exceed num_concepts"):
        SINEConfig(num_concepts=3, num_interests=4)
    with pytest.raises(ValueError, match="temperature"):
        SINEConfig(temperature=0.0)
    with pytest.raises(ValueError, match="covariance_weight"):
        SINEConfig(covariance_weight=-1.0)
    with pytest.raises(ValueError, match="attention_dim"):
        SINEConfig(attention_dim=0)
    with pytest.raises(ValueError, match="embed_dim"):
        STAMPConfig(embed_dim=0)
    with pytest.raises(ValueError, match="hidden_dims"):
        YouTubeDNNConfig(hidden_dims=[0])
    with pytest.raises(ValueError, match="embed_dim"):
        YouTubeDNNConfig(embed_dim=0)


# ---- ONNX ----

MODELS = {"youtube_dnn": youtube, "stamp": stamp, "sine": sine}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_both_towers_export_to_onnx(name, tmp_path):
    model = MODELS[name]()
    keys = ("gender", "age", "hist") if name == "youtube_dnn" else ("hist",)
    users, other = ({k: b[k] for k in keys} for b in (user_batch(0), user_batch(1, rows=9)))
    export_onnx(model, model.user_embedding, users, tmp_path / "user.onnx", output_name="user")
    assert model.user_embedding(other).shape == (9, D)
    assert parity(tmp_path / "user.onnx", model.user_embedding, other) < 1e-4
    items = {"item_id": torch.arange(1, 11)}
    export_onnx(model, model.item_embedding, items, tmp_path / "item.onnx", output_name="item")
    assert parity(tmp_path / "item.onnx", model.item_embedding, {"item_id": torch.arange(3, VOCAB)}) < 1e-4
