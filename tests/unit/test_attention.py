"""TransformerBlock (and SASRec's use of it): shapes, padding never leaks, causality, no NaN."""

import pytest
import torch

from rechub_core.export import export_onnx, parity
from rechub_core.features import Schema, SequenceFeature, SparseFeature
from rechub_core.layers import TransformerBlock
from rechub_core.models.matching.sasrec import SASRec, SASRecConfig

B, L, D = 4, 6, 8
# left-padded: row 0 full, row 1 two padding positions, row 2 one real item, row 3 all padding
MASK = torch.tensor([[1] * 6, [0, 0, 1, 1, 1, 1], [0, 0, 0, 0, 0, 1], [0] * 6]).bool()


def block(num_heads: int = 2, seed: int = 0) -> TransformerBlock:
    torch.manual_seed(seed)
    return TransformerBlock(D, num_heads=num_heads, dropout=0.1).eval()


def inputs(seed: int = 0) -> torch.Tensor:
    return torch.randn(B, L, D, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("num_heads", [1, 2, 4])
def test_shapes_and_zero_padding(causal, num_heads):
    out = block(num_heads)(inputs(), MASK, causal=causal)
    assert out.shape == (B, L, D)
    assert torch.isfinite(out).all()
    assert (out[~MASK] == 0).all()
    assert (out[MASK].abs().sum(-1) > 0).all()


def test_ffn_dim_and_heads_must_divide():
    assert TransformerBlock(D, 2, 0.0, ffn_dim=32).ffn[0].out_features == 32
    with pytest.raises(ValueError, match="divisible"):
        TransformerBlock(D, 3, 0.0)


@pytest.mark.parametrize("causal", [True, False])
def test_padding_positions_never_leak(causal):
    """Whatever sits at padding positions (other items, another padding embedding), real outputs stay."""
    b, x = block(), inputs()
    before = b(x, MASK, causal=causal)
    noisy = torch.where(MASK.unsqueeze(-1), x, 100 * inputs(seed=1))  # (B, L, D)
    after = b(noisy, MASK, causal=causal)
    assert torch.equal(after[~MASK], before[~MASK])
    torch.testing.assert_close(after, before, rtol=0, atol=1e-6)


@pytest.mark.parametrize("causal", [True, False])
def test_all_padding_row_has_no_nan_in_outputs_or_gradients(causal):
    b = block()
    x = inputs().requires_grad_(True)
    mask = torch.zeros(B, L, dtype=torch.bool)
    out = b(x, mask, causal=causal)
    assert (out == 0).all()
    b.train()(x, MASK, causal=causal).sum().backward()
    assert torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in b.parameters())


def test_causal_later_items_do_not_change_earlier_positions():
    b, x = block(), inputs()
    before = b(x, MASK, causal=True)
    t = 3
    changed = x.clone()
    changed[:, t:] = inputs(seed=2)[:, t:]
    after = b(changed, MASK, causal=True)
    torch.testing.assert_close(after[:, :t], before[:, :t], rtol=0, atol=1e-6)
    assert not torch.allclose(after[:2, t:], before[:2, t:])
    # without the causal mask the earlier real positions see the change
    assert not torch.allclose(b(changed, MASK, causal=False)[:2, 2:t], b(x, MASK, causal=False)[:2, 2:t])


def _sasrec() -> SASRec:
    history = SequenceFeature("hist", 20, L, shares="item_id")
    schema = Schema({"user": (history,), "item": (SparseFeature("item_id", 20),)})
    torch.manual_seed(0)
    return SASRec(schema, SASRecConfig(embed_dim=D, num_heads=2, dropout=0.2)).eval()


def test_sasrec_padding_embedding_and_later_items_do_not_leak():
    model = _sasrec()
    ids = torch.randint(1, 20, (B, L), generator=torch.Generator().manual_seed(0)) * MASK  # (B, L)
    before = model.sequence_states(ids)
    assert torch.isfinite(before).all() and (before[~MASK] == 0).all()
    with torch.no_grad():
        model.embedding.table.weight[0] += 5.0  # the padding id's embedding
    torch.testing.assert_close(model.sequence_states(ids), before, rtol=0, atol=1e-6)
    later = ids.clone()
    later[:, -1] = (later[:, -1] % 19) + 1  # another most recent item
    torch.testing.assert_close(model.sequence_states(later)[:, :-1], before[:, :-1], rtol=0, atol=1e-6)
    # rows 1-3 start with two padding positions: without them, the states are the same
    torch.testing.assert_close(model.sequence_states(ids[1:, 2:]), before[1:, 2:], rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="max_len"):
        model.sequence_states(torch.ones(1, L + 1, dtype=torch.long))


def test_sasrec_needs_an_item_history():
    schema = Schema({"user": (SparseFeature("user_id", 5),), "item": (SparseFeature("item_id", 20),)})
    with pytest.raises(ValueError, match="shares='item_id'"):
        SASRec(schema, SASRecConfig())
    with pytest.raises(ValueError, match="num_heads"):
        SASRecConfig(embed_dim=10, num_heads=4)
    with pytest.raises(ValueError, match="num_blocks"):
        SASRecConfig(num_blocks=0)


@pytest.mark.parametrize("causal", [True, False])
def test_block_exports_to_onnx(causal, tmp_path):
    b = block()
    example = {"x": inputs(), "mask": MASK}

    def fn(batch):
        return b(batch["x"], batch["mask"], causal=causal)

    export_onnx(b, fn, example, tmp_path / "block.onnx", output_name="out")
    assert parity(tmp_path / "block.onnx", fn, example) < 1e-5
