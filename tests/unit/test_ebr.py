"""Kuaishou's divide-and-conquer EBR: the within-cluster sampler, prompted task vectors, the loss, learning, ONNX."""

import pytest
import torch

from rechub_core.data.tables import TensorTable
from rechub_core.export import export_onnx, parity
from rechub_core.features import Schema, SequenceFeature, SparseFeature
from rechub_core.models.matching.kuaishou_ebr import KuaishouEBR, KuaishouEBRConfig
from rechub_core.training.divide_and_conquer import ClusterSampler, divide_and_conquer_loss, fit_divide_and_conquer
from rechub_core.training.objectives import DivideAndConquer
from rechub_core.training.trainer import TrainConfig

N_ITEMS, L, K = 41, 6, 4  # ids 1..40, histories of 6, category values 0..3
IDS = torch.arange(N_ITEMS)
CLUSTER = torch.where(IDS > 0, (IDS - 1) // 2 % 3 + 1, 0)  # clusters 1..3, each with both parities; 0 empty


def schema(cluster_feature: str = "category") -> Schema:
    return Schema(
        {
            "user": (SequenceFeature("hist", N_ITEMS, L, shares="item_id"),),
            "item": (SparseFeature("item_id", N_ITEMS), SparseFeature(cluster_feature, K)),
        }
    )


def model(**kwargs) -> KuaishouEBR:
    return KuaishouEBR(schema(), KuaishouEBRConfig(**kwargs))


def items() -> TensorTable:
    return TensorTable({"item_id": IDS, "category": CLUSTER})


def histories(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    hist = torch.randint(1, N_ITEMS, (n, L), generator=g)
    hist[:, :2] *= torch.rand(n, 2, generator=g) < 0.5  # some left padding
    hist[0] = 0  # an empty history
    return hist


def test_sampler_draws_uniformly_within_the_cluster():
    clusters = torch.tensor([0, 2, 1, 2, 2, 0, 1, 2, 3, 2, 0])  # id 0 padding; cluster 3 is id 8 alone; 4 empty
    sampler = ClusterSampler(clusters, 5)
    rows = torch.tensor([0, 1, 2, 3, 4])
    draws = sampler.sample(rows, 40_000, torch.Generator().manual_seed(0))
    assert draws.shape == (5, 40_000)
    for row, k in enumerate(rows.tolist()):
        members = [i for i in range(1, len(clusters)) if clusters[i] == k]  # never padding id 0
        if not members:
            assert (draws[row] == 0).all()  # an empty cluster has nothing to draw
            continue
        freq = torch.bincount(draws[row], minlength=len(clusters)).double() / draws.shape[1]
        expected = torch.zeros(len(clusters), dtype=torch.float64)
        expected[members] = 1 / len(members)
        assert 0.5 * (freq - expected).abs().sum() < 0.02  # total variation
        assert set(draws[row].unique().tolist()) == set(members)
    assert (draws[3] == 8).all()  # the single item of cluster 3
    again = sampler.sample(rows, 40_000, torch.Generator().manual_seed(0))
    assert torch.equal(draws, again)


def test_sampler_rejects_cluster_values_out_of_range():
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        ClusterSampler(torch.tensor([0, 1, 3]), 3)


def test_task_embedding_is_the_user_embedding_of_that_task():
    torch.manual_seed(0)
    m = model(embed_dim=8, num_blocks=2, num_heads=2).eval()
    with torch.no_grad():
        m.prompts.weight.normal_()  # distinct prompts
    batch = {"hist": histories(7, seed=1)}
    user = m.user_embedding(batch)
    assert user.shape == (7, K, 8)
    for t in range(K):
        torch.testing.assert_close(m.task_embedding(batch, torch.full((7,), t)), user[:, t])
    task = torch.tensor([3, 0, 1, 2, 2, 1, 0])  # one task per row
    torch.testing.assert_close(m.task_embedding(batch, task), user[torch.arange(7), task])
    assert not torch.allclose(user[1:, 1], user[1:, 2])  # different prompts, different vectors
    assert torch.equal(user[0], torch.zeros(K, 8))  # an empty history: zero, not padding's embedding


def test_a_prompt_changes_only_its_own_task():
    torch.manual_seed(0)
    m = model(embed_dim=8, num_blocks=1).eval()
    batch = {"hist": histories(5, seed=2)}
    before = m.user_embedding(batch)
    with torch.no_grad():
        m.prompts.weight[2] += torch.randn(8)
    after = m.user_embedding(batch)
    assert not torch.allclose(after[1:, 2], before[1:, 2])
    others = [0, 1, 3]
    torch.testing.assert_close(after[:, others], before[:, others])
    assert m.interest_groups().tolist() == [0, 1, 2, 3]
    assert m.group_feature == "category"
    assert sum(p.numel() for p in m.prompts.parameters()) == K * 8  # the only per-task parameters


def test_missing_cluster_feature_is_named():
    with pytest.raises(ValueError, match="'category'"):
        KuaishouEBR(schema("brand"), KuaishouEBRConfig())
    with pytest.raises(ValueError, match="'genre'"):
        KuaishouEBR(schema(), KuaishouEBRConfig(cluster_feature="genre"))


def test_loss_is_the_softmax_over_same_cluster_negatives_with_hits_masked():
    torch.manual_seed(0)
    m = model(embed_dim=8, num_blocks=1).eval()
    objective = DivideAndConquer(num_negatives=5, temperature=0.5)
    batch = {"hist": histories(6, seed=3), "item_id": torch.tensor([1, 2, 7, 12, 33, 40])}
    sampler = ClusterSampler(CLUSTER, K)
    loss = divide_and_conquer_loss(m, batch, items(), sampler, objective, torch.Generator().manual_seed(4))
    # by hand, with the same draws
    task = CLUSTER[batch["item_id"]]
    neg = sampler.sample(task, 5, torch.Generator().manual_seed(4))  # (B, 5)
    assert (CLUSTER[neg] == task.unsqueeze(1)).all()
    table = m.embedding.table.weight
    user = m.task_embedding(batch, task)
    pos_score = (user * table[batch["item_id"]]).sum(-1, keepdim=True)  # (B, 1)
    logits = torch.cat([pos_score, torch.einsum("bd,bnd->bn", user, table[neg])], 1) / 0.5  # (B, 6)
    logits[:, 1:] = logits[:, 1:].masked_fill(neg == batch["item_id"].unsqueeze(1), float("-inf"))
    expected = (torch.logsumexp(logits, 1) - logits[:, 0]).mean()
    torch.testing.assert_close(loss, expected)
    # a cluster of one item: every draw is the positive itself, masked, and the loss is 0
    lonely = torch.where(IDS == 40, 3, torch.where(IDS > 0, 1, 0))
    one = {"hist": batch["hist"][:2], "item_id": torch.tensor([40, 40])}
    lone_loss = divide_and_conquer_loss(m, one, items(), ClusterSampler(lonely, K), objective, torch.Generator())
    assert lone_loss.item() == 0.0


def preference_data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two user types; type t likes the items with ``parity XOR (cluster == 2) == t`` (a different half per cluster).

    Returns ``hist (n, L)`` of liked items, a liked positive ``(n,)`` and the types ``(n,)``.
    """
    g = torch.Generator().manual_seed(seed)
    types = torch.randint(0, 2, (n,), generator=g)
    liked_by = [[i for i in range(1, N_ITEMS) if (i % 2) ^ int(CLUSTER[i] == 2) == t] for t in (0, 1)]
    liked = torch.tensor(liked_by)  # (2, 20)
    pick = torch.randint(0, liked.shape[1], (n, L + 1), generator=g)
    seq = liked[types.unsqueeze(1), pick]  # (n, L+1)
    seq[:, :2] *= torch.rand(n, 2, generator=g) < 0.5  # some left padding
    return seq[:, :-1], seq[:, -1], types


def within_cluster_accuracy(m: KuaishouEBR, hist: torch.Tensor, types: torch.Tensor) -> float:
    """Share of (user, cluster 1..3) whose task vector ranks a liked item of that cluster first."""
    with torch.no_grad():
        user = m.user_embedding({"hist": hist})  # (n, K, D)
        item = m.item_embedding({"item_id": IDS})  # (41, D)
    hits = []
    for k in (1, 2, 3):
        members = torch.nonzero(CLUSTER == k).squeeze(1)
        top = members[(user[:, k] @ item[members].T).argmax(1)]  # (n,)
        hits.append(((top % 2) ^ int(k == 2)) == types)
    return torch.stack(hits).double().mean().item()


def test_a_tiny_model_learns_a_planted_within_cluster_preference():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        m = model(embed_dim=16, num_blocks=1, dropout=0.0)
        hist, pos, _ = preference_data(600, seed=0)
        test_hist, _, test_types = preference_data(300, seed=1)
        before = within_cluster_accuracy(m.eval(), test_hist, test_types)
        train = TensorTable({"hist": hist, "item_id": pos})
        config = TrainConfig(epochs=12, batch_size=64, learning_rate=0.02)
        objective = DivideAndConquer(num_negatives=8, temperature=0.2)
        generator = torch.Generator().manual_seed(0)
        history = fit_divide_and_conquer(m, train, items(), objective, config, generator=generator)
    finally:
        torch.set_num_threads(threads)
    assert [r["epoch"] for r in history] == list(range(1, 13))
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert not m.training
    after = within_cluster_accuracy(m, test_hist, test_types)
    assert before < 0.75 and after > 0.95, (before, after)


def test_fit_rejects_items_that_are_not_id_indexed():
    m = model(embed_dim=8, num_blocks=1)
    train = TensorTable({"hist": histories(4, seed=0), "item_id": torch.tensor([1, 2, 3, 4])})
    shuffled = TensorTable({"item_id": IDS.flip(0), "category": CLUSTER})
    with pytest.raises(ValueError, match="id-indexed"):
        fit_divide_and_conquer(m, train, shuffled, DivideAndConquer(), TrainConfig(), generator=torch.Generator())
    with pytest.raises(ValueError, match="'category'"):
        fit_divide_and_conquer(
            m, train, TensorTable({"item_id": IDS}), DivideAndConquer(), TrainConfig(), generator=torch.Generator()
        )


def test_towers_export_to_onnx_with_parity(tmp_path):
    torch.manual_seed(0)
    m = model(embed_dim=8, num_blocks=2, num_heads=2).eval()
    with torch.no_grad():
        m.prompts.weight.normal_()
    user_path, item_path = tmp_path / "user.onnx", tmp_path / "item.onnx"
    export_onnx(m, m.user_embedding, {"hist": histories(3, seed=0)}, user_path, output_name="user_embedding")
    export_onnx(m, m.item_embedding, {"item_id": IDS[1:4]}, item_path, output_name="item_embedding")
    assert parity(user_path, m.user_embedding, {"hist": histories(9, seed=5)}) < 1e-4  # another batch size
    assert parity(item_path, m.item_embedding, {"item_id": IDS[1:]}) < 1e-4
