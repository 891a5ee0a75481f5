"""GRUs with an attentional update: DIEN's interest evolving layer.

Zhou et al., "Deep Interest Evolution Network for Click-Through Rate
Prediction", AAAI 2019, Sec. 4.3. A GRU reads the extracted interests
``i_t`` with, at each step, an attention score ``a_t`` of the target for that
step; the paper's GRU (Eqs. 1-4) is

    u_t = σ(W^u i_t + U^u h_{t-1} + b^u)            update gate
    r_t = σ(W^r i_t + U^r h_{t-1} + b^r)            reset gate
    h̃_t = tanh(W^h i_t + r_t ∘ U^h h_{t-1} + b^h)   candidate
    h_t = (1 - u_t) ∘ h_{t-1} + u_t ∘ h̃_t

and the attention enters in one of three ways:
- AIGRU (``AIGRUCell``): the input is scaled, ``i'_t = a_t · i_t``, into a
  plain GRU cell (``nn.GRUCell``);
- AGRU (``AGRUCell``): the score replaces the update gate,
  ``h_t = (1 - a_t) · h_{t-1} + a_t · h̃_t`` (no ``u_t`` at all);
- AUGRU (``AUGRUCell``): the score scales the update gate, ``ũ_t = a_t · u_t``,
  ``h_t = (1 - ũ_t) ∘ h_{t-1} + ũ_t ∘ h̃_t``.

``InterestEvolution`` runs a cell over left-padded ``(B, L, D)`` inputs with
``(B, L)`` scores and mask. A padding step carries the state through unchanged
(``torch.where``), so an empty row ends at the zero state and a row's final
state is the state after its most recent real step. The step loop has a fixed
number of steps and no data-dependent control flow, so it unrolls at ONNX
export.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

Evolution = Literal["augru", "aigru", "agru"]


class _GatedCell(nn.Module):
    """The paper's GRU maths for ``gates`` sigmoid gates and the candidate, on ``(S, D_in)`` inputs, ``(S, H)`` state.

    ``input`` stacks ``[W^g; ...; W^h]`` with the biases ``b``, ``hidden`` stacks ``[U^g; ...; U^h]``.
    """

    def __init__(self, input_dim: int, hidden_dim: int, gates: int):
        super().__init__()
        self.input = nn.Linear(input_dim, (gates + 1) * hidden_dim)
        self.hidden = nn.Linear(hidden_dim, (gates + 1) * hidden_dim, bias=False)
        self.hidden_dim = hidden_dim

    def gates_and_candidate(self, x: torch.Tensor, h: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The gates (update first when there is one, then reset) and the candidate ``h̃``, each ``(S, H)``."""
        *xg, xh = self.input(x).split(self.hidden_dim, dim=-1)  # (S, H) each
        *hg, hh = self.hidden(h).split(self.hidden_dim, dim=-1)  # (S, H) each
        gates = [torch.sigmoid(a + b) for a, b in zip(xg, hg)]
        return gates, torch.tanh(xh + gates[-1] * hh)  # the last gate is the reset gate r_t


class AUGRUCell(_GatedCell):
    """AUGRU: ``h = (1 - a·u) ∘ h_prev + a·u ∘ h̃``; inputs ``(S, D_in)``, state ``(S, H)``, score ``(S, 1)``.

    ``input`` / ``hidden`` stack the update gate, the reset gate and the candidate, in that order.
    """

    def __init__(self, input_dim: int, hidden_dim: int):
        super().__init__(input_dim, hidden_dim, gates=2)

    def forward(self, x: torch.Tensor, h: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
        (update, _), candidate = self.gates_and_candidate(x, h)
        update = score * update  # (S, H): ũ_t = a_t · u_t
        return (1 - update) * h + update * candidate


class AGRUCell(_GatedCell):
    """AGRU: ``h = (1 - a) · h_prev + a · h̃``; inputs ``(S, D_in)``, state ``(S, H)``, score ``(S, 1)``.

    No update gate: ``input`` / ``hidden`` stack the reset gate and the candidate.
    """

    def __init__(self, input_dim: int, hidden_dim: int):
        super().__init__(input_dim, hidden_dim, gates=1)

    def forward(self, x: torch.Tensor, h: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
        _, candidate = self.gates_and_candidate(x, h)
        return (1 - score) * h + score * candidate


class AIGRUCell(nn.Module):
    """AIGRU: a plain GRU cell reading the attention-scaled input ``a · x``; same interface as the other cells."""

    def __init__(self, input_dim: int, hidden_dim: int):
        super().__init__()
        self.gru = nn.GRUCell(input_dim, hidden_dim)

    def forward(self, x: torch.Tensor, h: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
        return self.gru(score * x, h)


CELLS: dict[str, type[nn.Module]] = {"augru": AUGRUCell, "aigru": AIGRUCell, "agru": AGRUCell}


class InterestEvolution(nn.Module):
    """Inputs ``(B, L, D_in)``, scores ``(B, L)``, mask ``(B, L)`` → the final state ``(B, H)``.

    >>> evolve = InterestEvolution(4, 3, "augru")
    >>> mask = torch.tensor([[0, 0, 1, 1, 1], [0] * 5]).bool()
    >>> final = evolve(torch.randn(2, 5, 4), torch.full((2, 5), 0.2), mask)
    >>> final.shape, bool((final[1] == 0).all())
    (torch.Size([2, 3]), True)
    """

    def __init__(self, input_dim: int, hidden_dim: int, kind: Evolution):
        super().__init__()
        if kind not in CELLS:
            raise ValueError(f"kind must be one of {sorted(CELLS)}, got {kind!r}")
        self.cell = CELLS[kind](input_dim, hidden_dim)
        self.hidden_dim = hidden_dim

    def forward(self, x: torch.Tensor, scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = x.new_zeros(x.shape[0], self.hidden_dim)  # (B, H)
        for t in range(x.shape[1]):  # a fixed number of steps: unrolled at export
            new = self.cell(x[:, t], h, scores[:, t : t + 1])  # (B, H)
            h = torch.where(mask[:, t : t + 1], new, h)  # padding carries the state through
        return h
