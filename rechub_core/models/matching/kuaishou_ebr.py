"""Kuaishou's divide-and-conquer EBR: one user vector per item cluster, by prompting.

Zhang, Dong, Ding, Li, Jiang & Gai, "Divide and Conquer: Towards Better
Embedding-based Retrieval for Recommender Systems From a Multi-task
Perspective", WWW 2023 (arXiv 2302.02657). The candidate items are divided
into K clusters and retrieval runs within each cluster; retrieving from
cluster k is task k, whose negatives are mostly hard ones (items of the same
cluster), and the top candidates of every cluster are merged.

Task adaptation by prompting: task k has a learnable prompt p_k in R^D,
multiplied element-wise (Hadamard product) into every behaviour embedding of
the user's history before a shared SASRec-like encoder (Kang & McAuley, ICDM
2018: positional embeddings, causal Transformer blocks, final layer norm);
the state at the last position is task k's user vector. The prompts add
K x D parameters. ``user_embedding`` returns every task's vector ``(B, K, D)``;
interest k retrieves only the items whose cluster is k (``interest_groups``).
Items are scored by the inner product with their embedding, from the same
table the history reads. ``fit_divide_and_conquer`` in
``rechub_core.training.divide_and_conquer`` trains it with the paper's
objective (each row is the task of its positive's cluster, negatives drawn
from that cluster).

Our choices: the clusters are the values of one sparse item feature,
``cluster_feature`` (``category`` on the real data, which ingest writes for
every item; K is its vocabulary size, so the unknown value 0 is a cluster
too), where the paper clusters its own corpus. The prompts start at 1, so
every task starts as the shared encoder; positional embeddings are added
after the prompt, so the prompt scales the items, not their positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from rechub_core.features import Schema, SparseFeature
from rechub_core.layers import FeatureEmbedding, TransformerBlock
from rechub_core.models.config import check_transformer
from rechub_core.models.matching.inputs import item_and_history


@dataclass
class KuaishouEBRConfig:
    name: Literal["kuaishou_ebr"] = "kuaishou_ebr"
    embed_dim: int = 64
    num_blocks: int = 2
    num_heads: int = 1
    dropout: float = 0.2
    cluster_feature: str = "category"  # the item feature whose values are the clusters (tasks)

    def __post_init__(self):
        check_transformer(self.embed_dim, self.num_heads, self.num_blocks, self.dropout)
        if not self.cluster_feature:
            raise ValueError("cluster_feature must name a sparse feature of the schema's 'item' group")


class KuaishouEBR(nn.Module):
    """``user_embedding(batch) -> (B, K, D)``, ``task_embedding(batch, task) -> (B, D)``, ``item_embedding -> (N, D)``.

    >>> from rechub_core.features import SequenceFeature
    >>> schema = Schema({"user": (SequenceFeature("hist", 10, 4, shares="item_id"),),
    ...                  "item": (SparseFeature("item_id", 10), SparseFeature("category", 3))})
    >>> model = KuaishouEBR(schema, KuaishouEBRConfig(embed_dim=8)).eval()
    >>> model.user_embedding({"hist": torch.tensor([[0, 3, 5, 7]])}).shape
    torch.Size([1, 3, 8])
    """

    def __init__(self, schema: Schema, config: KuaishouEBRConfig):
        super().__init__()
        self.config = config
        items, history = item_and_history(schema, "Kuaishou EBR")
        clusters = [f for f in schema.groups.get("item", ()) if f.name == config.cluster_feature]
        if not clusters or not isinstance(clusters[0], SparseFeature):
            raise ValueError(
                f"Kuaishou EBR clusters items by cluster_feature {config.cluster_feature!r}, which must be a "
                f"sparse feature of the schema's 'item' group; that group has "
                f"{[f.name for f in schema.groups.get('item', ())]}"
            )
        self.group_feature = config.cluster_feature
        self.num_tasks = clusters[0].vocab_size  # K: one task per cluster value
        self.history_name = history.name
        self.max_len = history.max_len
        self.embedding = FeatureEmbedding((items, history), config.embed_dim)  # shared item table
        self.prompts = nn.Embedding(self.num_tasks, config.embed_dim)  # p_k
        nn.init.ones_(self.prompts.weight)
        self.register_buffer("tasks", torch.arange(self.num_tasks), persistent=False)
        self.positions = nn.Embedding(history.max_len, config.embed_dim)
        nn.init.normal_(self.positions.weight, std=0.01)
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            TransformerBlock(config.embed_dim, config.num_heads, config.dropout) for _ in range(config.num_blocks)
        )
        self.final_norm = nn.LayerNorm(config.embed_dim)

    def interest_groups(self) -> torch.Tensor:
        """``(K,)``: the cluster value whose items interest k retrieves (k itself)."""
        return torch.arange(self.num_tasks)

    def _encode(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Prompted behaviours ``(N, L, D)`` with valid ``mask (N, L)`` → the last position's state ``(N, D)``."""
        length = x.shape[1]
        if length > self.max_len:
            raise ValueError(f"sequence length {length} exceeds the history's max_len {self.max_len}")
        pos = torch.arange(self.max_len - length, self.max_len, device=x.device)  # (L,): counted from the right
        keep = mask.unsqueeze(-1).to(x.dtype)  # (N, L, 1)
        x = self.dropout(x + self.positions(pos)) * keep  # (N, L, D)
        for block in self.blocks:
            x = block(x, mask, causal=True)  # (N, L, D)
        return self.final_norm(x[:, -1]) * keep[:, -1]  # (N, D): the most recent position, 0 for an empty history

    def task_embedding(self, batch: dict[str, torch.Tensor], task: torch.Tensor) -> torch.Tensor:
        """The user vector of one task per row: ``task (B,)`` cluster values → ``(B, D)``."""
        ids = batch[self.history_name]  # (B, L)
        x = self.embedding.lookup(self.history_name, ids) * self.prompts(task).unsqueeze(1)  # (B, L, D)
        return self._encode(x, ids > 0)

    def user_embedding(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        ids = batch[self.history_name]  # (B, L)
        length, k = ids.shape[1], self.num_tasks
        e = self.embedding.lookup(self.history_name, ids)  # (B, L, D)
        x = e.unsqueeze(1) * self.prompts(self.tasks)[None, :, None, :]  # (B, K, L, D)
        mask = (ids > 0).unsqueeze(1).expand(-1, k, -1)  # (B, K, L)
        users = self._encode(x.reshape(-1, length, e.shape[-1]), mask.reshape(-1, length))  # (B*K, D)
        return users.reshape(-1, k, e.shape[-1])  # (B, K, D)

    def item_embedding(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.embedding.lookup("item_id", batch["item_id"])  # (N, D)
