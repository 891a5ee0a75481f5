"""Cross-product transformations of sparse features: one id per combination of member ids.

Cheng et al., "Wide & Deep Learning for Recommender Systems", DLRS 2016,
Sec. 3.1: a crossed feature is 1 exactly when every member feature takes one
given value (``AND(gender=female, language=en)``), so a cross of features with
vocabularies ``v_1 … v_k`` has one indicator per combination of their ids.

The combination's id is the mixed-radix number of the member ids,
``((id_1 · v_2 + id_2) · v_3 + id_3) …``, which is exact (one row per
combination, ``v_1 ⋯ v_k`` rows) when that product is at most
``num_buckets``. Larger crosses are hashed into ``num_buckets`` rows by taking
the same number modulo ``num_buckets``; Horner's rule applies the modulo after
each step, so no intermediate ever exceeds ``num_buckets · max(v_i)`` however
many features a cross has (when the product fits, the modulo never changes
anything, so both cases are one computation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import accumulate

import torch
from torch import nn

from rechub_core.features import SparseFeature

_INT64_LIMIT = 2**63


class CrossedIds(nn.Module):
    """Ids of ``C`` crosses, ``batch -> (B, C)``; cross ``c``'s ids lie in ``[0, sizes[c])``.

    ``offsets`` places the crosses side by side in one fused table of
    ``num_ids`` rows: ``table(crossed(batch) + crossed.offsets)``.

    >>> a, b = SparseFeature("a", 3), SparseFeature("b", 4)
    >>> crossed = CrossedIds([[a, b]], num_buckets=100)
    >>> crossed({"a": torch.tensor([0, 2]), "b": torch.tensor([1, 3])}).tolist()  # a·4 + b
    [[1], [11]]
    >>> crossed.sizes
    [12]
    """

    def __init__(self, crosses: Sequence[Sequence[SparseFeature]], num_buckets: int):
        super().__init__()
        if not crosses or any(len(members) < 2 for members in crosses):
            raise ValueError("every cross needs at least two features")
        if num_buckets < 1:
            raise ValueError(f"num_buckets must be at least 1, got {num_buckets}")
        largest = max(f.vocab_size for members in crosses for f in members)
        if num_buckets * largest >= _INT64_LIMIT:
            raise ValueError(f"num_buckets ({num_buckets}) × vocabulary ({largest}) overflows int64 ids")
        self.names = list(dict.fromkeys(f.name for members in crosses for f in members))
        self.sizes = [min(math.prod(f.vocab_size for f in members), num_buckets) for members in crosses]
        self.num_ids = sum(self.sizes)
        width = max(len(members) for members in crosses)
        # member k of cross c: its column among ``names``, its radix, and 0 where the cross is shorter
        column = torch.zeros(len(crosses), width, dtype=torch.long)
        radix = torch.ones(len(crosses), width, dtype=torch.long)
        present = torch.zeros(len(crosses), width, dtype=torch.long)
        for c, members in enumerate(crosses):
            for k, f in enumerate(members):
                column[c, k], radix[c, k], present[c, k] = self.names.index(f.name), f.vocab_size, 1
        self.register_buffer("column", column, persistent=False)  # (C, K)
        self.register_buffer("radix", radix, persistent=False)  # (C, K)
        self.register_buffer("present", present, persistent=False)  # (C, K)
        self.register_buffer("modulus", torch.tensor(self.sizes, dtype=torch.long), persistent=False)  # (C,)
        starts = [0, *accumulate(self.sizes)][:-1]
        self.register_buffer("offsets", torch.tensor(starts, dtype=torch.long), persistent=False)  # (C,)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        ids = torch.stack([batch[n].long() for n in self.names], dim=1)  # (B, U)
        members = ids[:, self.column] * self.present  # (B, C, K), 0 past a cross's last member
        out = torch.zeros_like(members[:, :, 0])  # (B, C)
        for k in range(members.shape[2]):
            out = (out * self.radix[:, k] + members[:, :, k]) % self.modulus  # (B, C)
        return out

