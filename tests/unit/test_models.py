"""Every registered model: shapes, finite loss and gradients on a seeded tiny batch.

Parametrised over the registry itself, so a newly registered model is tested
without touching this file, and nothing is skipped.
"""

import pytest
import torch
import torch.nn.functional as F

from rechub_core.features import DenseFeature, Schema, SequenceFeature, SparseFeature
from rechub_core.models.registry import BASELINES, REGISTRY, build

LONG = 12  # the long behaviour window's length
SCHEMA = Schema(
    {
        "user": (
            SparseFeature("user_id", 11),
            SparseFeature("gender", 3),
            SparseFeature("age_bucket", 6),
            SequenceFeature("hist", 21, 5, shares="item_id"),
        ),
        "item": (
            SparseFeature("item_id", 21),
            SparseFeature("category", 4),
            SparseFeature("price_bucket", 6),
            DenseFeature("price"),
        ),
        # ranking rows' behaviour columns (rechub_core.data.behaviors): aligned with hist, and the long log's window
        "behavior": (SequenceFeature("hist_category", 4, 5, shares="category"), SequenceFeature("hist_dt", 17, 5)),
        "negatives": (
            SequenceFeature("hist_neg", 21, 5, shares="item_id"),
            SequenceFeature("hist_neg_category", 4, 5, shares="category"),
        ),
        "long": (
            SequenceFeature("long_item", 21, LONG, shares="item_id"),
            SequenceFeature("long_category", 4, LONG, shares="category"),
            SequenceFeature("long_dt", 17, LONG),
        ),
    },
    labels=("click", "conversion"),
)
B = 6


def batch(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    hist = torch.randint(0, 21, (B, 5), generator=g)
    hist[0] = 0  # an empty history
    out = {
        "user_id": torch.randint(1, 11, (B,), generator=g),
        "gender": torch.randint(0, 3, (B,), generator=g),
        "hist": hist,
        "item_id": torch.randint(1, 21, (B,), generator=g),
        "category": torch.randint(0, 4, (B,), generator=g),
        "price": torch.randn(B, generator=g),
        "click": torch.randint(0, 2, (B,), generator=g),
        "conversion": torch.zeros(B, dtype=torch.long),
    }
    # drawn last, so the columns above keep their values
    out["age_bucket"] = torch.randint(0, 6, (B,), generator=g)
    out["price_bucket"] = torch.randint(0, 6, (B,), generator=g)
    real = hist > 0
    out["hist_category"] = torch.randint(1, 4, (B, 5), generator=g) * real
    out["hist_dt"] = torch.randint(1, 17, (B, 5), generator=g) * real
    out["hist_neg"] = torch.randint(1, 21, (B, 5), generator=g) * real
    out["hist_neg_category"] = torch.randint(1, 4, (B, 5), generator=g) * real
    lengths = torch.tensor([0, 1, 3, 7, LONG, LONG])  # an empty window, short ones, full ones (left-padded)
    long_real = torch.arange(LONG) >= LONG - lengths.unsqueeze(1)  # (B, LONG)
    out["long_item"] = torch.randint(1, 21, (B, LONG), generator=g) * long_real
    out["long_category"] = torch.randint(1, 4, (B, LONG), generator=g) * long_real
    out["long_dt"] = torch.randint(1, 17, (B, LONG), generator=g) * long_real
    return out


def entries(registry):
    return [(family, name, e) for family, models in registry.items() for name, e in models.items()]


def _check_gradients(model, loss):
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("family,name,entry", entries(REGISTRY) + entries(BASELINES), ids=lambda x: str(x)[:20])
def test_model_shapes_loss_and_gradients(family, name, entry):
    torch.manual_seed(0)
    config = entry.config()
    assert config.name == name
    kwargs = {"num_tasks": 2} if family == "multi_task" else {}
    model = build(family, config, SCHEMA, **kwargs)
    b = batch()
    if family == "matching":
        user = model.user_embedding(b)
        item = model.item_embedding(b)
        assert user.shape[0] == B and user.shape[-1] == item.shape[-1] and item.shape[0] == B
        assert user.dim() in (2, 3)  # (B, D) or multi-interest (B, K, D)
        loss = F.cross_entropy((user.reshape(B, -1, user.shape[-1])[:, 0] @ item.T), torch.arange(B))
    elif family == "ranking":
        logits = model(b)
        assert logits.shape == (B,)
        loss = F.binary_cross_entropy_with_logits(logits, b["click"].float())
    else:
        logits = model(b)
        assert logits.shape == (B, 2)
        loss = F.binary_cross_entropy_with_logits(logits, torch.stack([b["click"], b["conversion"]], 1).float())
    assert torch.isfinite(loss)
    _check_gradients(model, loss)


@pytest.mark.parametrize("family,name,entry", entries(REGISTRY), ids=lambda x: str(x)[:20])
def test_padding_never_leaks_into_outputs(family, name, entry):
    """Changing the embedding of the padding id 0 of the history leaves every output unchanged."""
    from rechub_core.layers import FeatureEmbedding

    torch.manual_seed(0)
    kwargs = {"num_tasks": 2} if family == "multi_task" else {}
    model = build(family, entry.config(), SCHEMA, **kwargs)
    fn = model.user_embedding if family == "matching" else model
    b = batch()
    for module in model.modules():  # BatchNorm's running statistics from a batch, as after training, not 0/1
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.momentum = None
    with torch.no_grad():
        fn(b)
    model.eval()
    before = fn(b)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, FeatureEmbedding) and "hist" in module.offsets:
                module.table.weight[module.offsets["hist"]] += 5.0
    assert torch.allclose(fn(b), before, atol=1e-6)
    # while the history's real items do matter
    assert not torch.allclose(fn(dict(b, hist=torch.flip(b["hist"], [0]))), before)


def test_registry_names_match_configs():
    for family, models in REGISTRY.items():
        for name, e in models.items():
            assert e.config().name == name, (family, name)
