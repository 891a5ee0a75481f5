"""Kuaishou's divide-and-conquer training: each row is the retrieval task of its positive's cluster.

Zhang et al., "Divide and Conquer: Towards Better Embedding-based Retrieval
for Recommender Systems From a Multi-task Perspective", WWW 2023 (arXiv
2302.02657). Retrieval runs within each item cluster, so a training row
belongs to the task of its positive's cluster: the task's user vector
scores the positive against ``num_negatives`` items drawn uniformly from the
same cluster (mostly hard negatives), in a softmax over
``[positive, negatives]`` with scores / ``temperature``. A draw equal to the
positive is masked (a cluster of one item gives only masked draws, and a zero loss).

The model supplies ``group_feature`` (the item feature naming the cluster),
``interest_groups() -> (K,)``, ``task_embedding(batch, task (B,)) -> (B, D)``
and ``item_embedding(items) -> (N, D)``.
"""

from __future__ import annotations

import torch
from torch import nn

from rechub_core.data.tables import Batch, TensorTable
from rechub_core.training.losses import listwise_softmax
from rechub_core.training.objectives import DivideAndConquer
from rechub_core.training.optim import trains_with_sparse_embeddings
from rechub_core.training.trainer import TrainConfig, epoch_batches, optimizer_for


class ClusterSampler:
    """Uniform draws among the real items (ids >= 1) of a given cluster, vectorised.

    ``clusters (N,)`` is the cluster of every item id (row r = id r; row 0,
    padding, is never drawn), values in ``[0, num_clusters)``. Items are kept
    sorted by cluster with each cluster's offset and size, so a draw is one
    uniform rank per (row, negative) mapped to an id by indexing.
    """

    def __init__(self, clusters: torch.Tensor, num_clusters: int):
        if clusters.dim() != 1 or len(clusters) < 2:
            raise ValueError(f"clusters must be 1-d over ids 0..N-1 with N >= 2, got shape {tuple(clusters.shape)}")
        real = clusters[1:]
        if len(real) and (int(real.min()) < 0 or int(real.max()) >= num_clusters):
            raise ValueError(f"item clusters must be in [0, {num_clusters}), got {int(real.min())}..{int(real.max())}")
        self.clusters = clusters
        self.sorted_ids = torch.argsort(real, stable=True) + 1  # (N-1,): real ids, grouped by cluster
        self.sizes = torch.bincount(real, minlength=num_clusters)  # (K,)
        self.offsets = torch.cumsum(self.sizes, 0) - self.sizes  # (K,): where each cluster starts in sorted_ids

    def sample(self, cluster: torch.Tensor, num: int, generator: torch.Generator) -> torch.Tensor:
        """``(B, num)`` ids, each uniform among the items of its row's ``cluster (B,)``; 0 for an empty cluster."""
        size = self.sizes[cluster].unsqueeze(1)  # (B, 1)
        u = torch.rand((len(cluster), num), generator=generator, dtype=torch.float64)
        rank = (u * size).long().clamp(max=(size - 1).clamp(min=0))  # (B, num)
        ids = self.sorted_ids[(self.offsets[cluster].unsqueeze(1) + rank).clamp(max=len(self.sorted_ids) - 1)]
        return torch.where(size > 0, ids, 0)


def divide_and_conquer_loss(
    model: nn.Module, batch: Batch, items: TensorTable, sampler: ClusterSampler, objective: DivideAndConquer,
    generator: torch.Generator,
) -> torch.Tensor:
    """Mean over rows of the softmax loss of the positive against same-cluster negatives, in the row's task."""
    pos_ids = batch["item_id"]  # (B,)
    task = sampler.clusters[pos_ids]  # (B,): the positive's cluster
    neg_ids = sampler.sample(task, objective.num_negatives, generator)  # (B, N)
    neg_ids = torch.where(neg_ids > 0, neg_ids, pos_ids.unsqueeze(1))  # no item to draw: masked like a hit
    # each distinct item goes through the item tower once per batch
    unique, inverse = torch.unique(torch.cat([pos_ids, neg_ids.reshape(-1)]), return_inverse=True)
    vectors = model.item_embedding(items.take(unique))[inverse]  # (B + B*N, D)
    pos, neg = vectors[: len(pos_ids)], vectors[len(pos_ids) :].reshape(*neg_ids.shape, -1)  # (B, D), (B, N, D)
    user = model.task_embedding(batch, task)  # (B, D)
    return listwise_softmax(user, pos, neg, pos_ids, neg_ids, temperature=objective.temperature)


@trains_with_sparse_embeddings
def fit_divide_and_conquer(
    model: nn.Module,
    train: TensorTable,
    items: TensorTable,
    objective: DivideAndConquer,
    config: TrainConfig,
    *,
    generator: torch.Generator,
    desc: str = "train",
) -> list[dict[str, float]]:
    """Train on ``train`` (user features incl. the history, positive ``item_id``) with ``items`` id-indexed.

    ``items`` row r is item id r (row 0 padding) with the item features,
    including ``model.group_feature``. Shuffling and negatives come from
    ``generator``. Returns one ``{"epoch", "train_loss"}`` dict per epoch.
    """
    feature = model.group_feature
    if feature not in items.columns:
        raise ValueError(
            f"items has no column {feature!r}, the model's cluster feature; it has {sorted(items.columns)}"
        )
    if not torch.equal(items["item_id"], torch.arange(len(items))):
        raise ValueError("items must be id-indexed: row r holds item_id r, row 0 padding")
    positives = train["item_id"]
    if len(positives) and (int(positives.min()) < 1 or int(positives.max()) >= len(items)):
        raise ValueError(f"train item_id must be real ids in 1..{len(items) - 1}")
    sampler = ClusterSampler(items[feature], len(model.interest_groups()))
    optimizer = optimizer_for(model, config)
    history: list[dict[str, float]] = []
    for epoch in range(1, config.epochs + 1):
        model.train()
        total, count = 0.0, 0
        for batch in epoch_batches(train, config, generator=generator, epoch=epoch, desc=desc):
            loss = divide_and_conquer_loss(model, batch, items, sampler, objective, generator)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            n = len(batch["item_id"])
            total += loss.item() * n
            count += n
        history.append({"epoch": epoch, "train_loss": total / max(count, 1)})
    model.eval()
    return history
