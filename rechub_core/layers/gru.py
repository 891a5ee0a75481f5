"""A GRU over left-padded sequences that padding never reaches.

``nn.GRU`` reads a row from its first position, so on a left-padded row the
padding would pass through the recurrence before the real items and change
every state after it. Here each row is rotated so its ``n`` real items come
first (one gather with per-row shifted indices: aligned slot ``i`` reads
position ``(i + L - n) mod L``), the GRU runs over the rotated rows, and the
states are rotated back (original position ``j`` reads slot ``(j + n) mod L``).
The padding now sits behind the real items: it is read after them and its
states are dropped, so it never reaches a real position. No per-row loop and
no data-dependent control flow, so the encoder exports to ONNX.
"""

from __future__ import annotations

import torch
from torch import nn


class GRUEncoder(nn.Module):
    """``(B, L, D_in)`` left-padded inputs with a ``(B, L)`` mask → states ``(B, L, H)`` and last state ``(B, H)``.

    The mask marks real positions; the real items of a row must be its last
    ``n`` positions (left padding). States are zero at padding, and the last
    state (the state after a row's most recent item) is zero for an empty row.

    >>> enc = GRUEncoder(4, 8)
    >>> states, last = enc(torch.randn(2, 5, 4), torch.tensor([[0, 0, 1, 1, 1], [0] * 5]).bool())
    >>> states.shape, last.shape, bool((last[1] == 0).all())
    (torch.Size([2, 5, 8]), torch.Size([2, 8]), True)
    """

    def __init__(self, input_dim: int, hidden_dim: int, num_layers: int = 1, dropout: float = 0.0):
        super().__init__()
        # nn.GRU's dropout acts between stacked layers only
        between = dropout if num_layers > 1 else 0.0
        self.gru = nn.GRU(input_dim, hidden_dim, num_layers, batch_first=True, dropout=between)
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        length = x.shape[1]
        n = mask.sum(dim=1, keepdim=True)  # (B, 1): real items per row
        pos = torch.arange(length, device=x.device)  # (L,)
        front = (pos + (length - n)) % length  # (B, L): where aligned slot i reads from
        aligned = x.gather(1, front.unsqueeze(-1).expand(-1, -1, x.shape[2]))  # (B, L, D_in): real items first
        states, _ = self.gru(aligned)  # (B, L, H)
        back = (pos + n) % length  # (B, L): the aligned slot of original position j
        states = states.gather(1, back.unsqueeze(-1).expand(-1, -1, self.hidden_dim))  # (B, L, H)
        states = states * mask.unsqueeze(-1).to(states.dtype)  # (B, L, H), zero at padding
        return states, states[:, -1]  # the most recent real item is the last position

    def step(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One step: inputs ``(S, D_in)``, state ``(num_layers, S, H)`` → top-layer output ``(S, H)``, state."""
        out, h = self.gru(x.unsqueeze(1), h)  # (S, 1, H), (num_layers, S, H)
        return out[:, 0], h

    def initial_state(self, batch_size: int) -> torch.Tensor:
        """The zero state ``(num_layers, S, H)`` a sequence starts from."""
        weight = self.gru.weight_hh_l0
        return torch.zeros(self.num_layers, batch_size, self.hidden_dim, dtype=weight.dtype, device=weight.device)
