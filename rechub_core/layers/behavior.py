"""Inputs of behaviour-sequence rankers: plain fields, the target item, and behaviour sequences.

Zhou et al. (DIN, KDD 2018, Sec. 4.1) represent a behaviour and the candidate
ad alike, as the concatenation of their attributes' embeddings (goods id, shop
id, category id), so attention can compare them. Here a *behaviour sequence*
is a set of aligned sequence features, each sharing the embedding table of one
sparse feature of the target item: the short history ``hist`` (shares
``item_id``) with ``hist_category`` (shares ``category``), or the long window
``long_item`` with ``long_category``. Its behaviours embed as ``(B, L, A*D)``,
and the target as ``(B, A*D)`` from the same tables, read at the item's own
features.

Every other feature of the model's groups is a plain field: sparse ids looked
up, any other sequence mean-pooled, dense columns appended (``plain``). Time
features aligned with a sequence (``hist_dt``, ``long_dt``) are neither: a
model reads them by name (``ids``) if it uses them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from rechub_core.features import Schema, SequenceFeature, SparseFeature, dense, sequences, sparse
from rechub_core.layers.embedding import FeatureEmbedding, stack_dense

SHORT = ("hist", "hist_category")
LONG = ("long_item", "long_category")
TIMES = {"hist": "hist_dt", "long_item": "long_dt"}  # the time feature aligned with a sequence's first column


class BehaviorInputs(nn.Module):
    """``plain(batch) -> (B, P)``, ``target(batch) -> (B, A*D)``, ``sequence(batch, i) -> ((B, L, A*D), (B, L) mask)``.

    ``behaviors`` lists the behaviour sequences, each as its aligned feature
    names (the first one's padding, id 0, marks the sequence's padding). All
    must be sequence features of ``groups`` sharing sparse features; every
    sequence's ``shares`` are the target's attributes, in the same order.

    >>> from rechub_core.features import SparseFeature
    >>> schema = Schema({"user": (SequenceFeature("hist", 9, 3, shares="item_id"),),
    ...                  "item": (SparseFeature("item_id", 9), SparseFeature("category", 4)),
    ...                  "behavior": (SequenceFeature("hist_category", 4, 3, shares="category"),)})
    >>> inputs = BehaviorInputs(schema, ["user", "item", "behavior"], [SHORT], dim=2)
    >>> batch = {"hist": torch.tensor([[0, 3, 5]]), "hist_category": torch.tensor([[0, 1, 2]]),
    ...          "item_id": torch.tensor([5]), "category": torch.tensor([2])}
    >>> seq, mask = inputs.sequence(batch, 0)
    >>> seq.shape, mask.tolist(), inputs.target(batch).shape, bool((seq[0, 2] == inputs.target(batch)[0]).all())
    (torch.Size([1, 3, 4]), [[False, True, True]], torch.Size([1, 4]), True)
    """

    def __init__(self, schema: Schema, groups: Sequence[str], behaviors: Sequence[Sequence[str]], dim: int):
        super().__init__()
        features = schema.features(*groups)
        by_name = {f.name: f for f in features}
        used = {name for seq in behaviors for name in seq} | set(TIMES.values())
        self.behaviors = [list(seq) for seq in behaviors]
        self.attributes: list[str] | None = None
        for seq in self.behaviors:
            attributes = []
            for name in seq:
                f = by_name.get(name)
                if f is None:
                    raise ValueError(
                        f"behaviour feature {name!r} is not in the model's groups {list(groups)}: add the group "
                        f"that holds it (hist_category: 'behavior'; long_item, long_category: 'long')"
                    )
                if not isinstance(f, SequenceFeature) or f.shares is None:
                    raise ValueError(
                        f"behaviour sequence feature {name!r} must be a sequence feature that shares an item "
                        f"feature, in the model's groups {list(groups)}; got {f}"
                    )
                if not isinstance(by_name.get(f.shares), SparseFeature):
                    raise ValueError(f"{name!r} shares {f.shares!r}, which is not a sparse feature of {list(groups)}")
                attributes.append(f.shares)
            if self.attributes not in (None, attributes):
                raise ValueError(f"behaviour sequences must share the same item features, got {self.attributes} and {attributes}")
            self.attributes = attributes
        if self.attributes is None:
            raise ValueError("a behaviour model needs at least one behaviour sequence")
        plain = tuple(f for f in features if f.name not in used)
        behavior_features = tuple(by_name[name] for seq in self.behaviors for name in seq)
        # one table: the plain fields, and the sequences (reading their shared item features' rows)
        self.embedding = FeatureEmbedding(plain + behavior_features, dim, fields=plain)
        self.dense_names = [f.name for f in dense(plain)]
        self.num_plain_fields = len(sparse(plain)) + len(sequences(plain))
        self.plain_dim = self.num_plain_fields * dim + len(self.dense_names)
        self.item_dim = len(self.attributes) * dim
        self.dim = dim

    def plain_fields(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The plain features as fields ``(B, F, D)`` (dense columns not included)."""
        return self.embedding(batch)

    def plain(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The plain features flattened, dense columns appended: ``(B, F*D + Fd)``."""
        flat = self.plain_fields(batch).flatten(start_dim=1)  # (B, F*D)
        if not self.dense_names:
            return flat
        return torch.cat([flat, stack_dense(batch, self.dense_names)], dim=1)  # (B, F*D + Fd)

    def target(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The candidate item, ``(B, A*D)``: its attributes' embeddings side by side."""
        return torch.cat([self.embedding.lookup(a, batch[a]) for a in self.attributes], dim=-1)  # (B, A*D)

    def embed(self, ids: Sequence[torch.Tensor], which: int = 0) -> torch.Tensor:
        """Embed aligned id tensors of behaviour sequence ``which`` (any shape ``S``): ``(*S, A*D)``."""
        names = self.behaviors[which]
        return torch.cat([self.embedding.lookup(n, t) for n, t in zip(names, ids)], dim=-1)

    def ids(self, batch: dict[str, torch.Tensor], which: int = 0) -> list[torch.Tensor]:
        """The raw ``(B, L)`` id tensors of behaviour sequence ``which``, in its feature order."""
        return [batch[n] for n in self.behaviors[which]]

    def sequence(self, batch: dict[str, torch.Tensor], which: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Behaviour sequence ``which`` embedded ``(B, L, A*D)``, and its ``(B, L)`` mask of real behaviours."""
        ids = self.ids(batch, which)
        return self.embed(ids, which), ids[0] > 0
