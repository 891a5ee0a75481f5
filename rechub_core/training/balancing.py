"""Multi-task loss balancing: how the per-task losses of a batch become one update.

The trainer computes one loss per task ``(T,)`` (BCE-with-logits for binary
tasks, squared error for regression tasks) and hands them to a ``Balancer``,
which writes the gradients of every parameter; the model's optimizer then
steps. The methods, chosen in params by name:

- ``equal``: the sum of the task losses.
- ``fixed``: a weighted sum with configured weights.
- ``uncertainty``: Kendall, Gal and Cipolla, "Multi-Task Learning Using
  Uncertainty to Weigh Losses for Scene Geometry and Semantics", CVPR 2018.
  One learned log-variance ``s`` per task: ``exp(-s) L + s / 2`` for a
  classification task, ``exp(-s) L / 2 + s / 2`` for a regression task.
- ``gradnorm``: Chen et al., "GradNorm: Gradient Normalization for Adaptive
  Loss Balancing in Deep Multitask Networks", ICML 2018. Learned weights
  ``w`` whose weighted gradient norms on the shared weights ``G_i = w_i
  ||grad L_i||`` are pulled towards ``mean(G) * r_i ** alpha``, with ``r_i``
  the task's relative inverse training rate ``(L_i / L_i(0)) / mean``;
  renormalised to sum to T after every step.
- ``metabalance``: He et al., "MetaBalance: Improving Multi-Task
  Recommendations via Adapting Gradient Magnitudes of Auxiliary Tasks",
  WWW 2022. On each shared parameter, an auxiliary task's gradient is
  rescaled towards the target task's gradient magnitude (moving averages of
  the norms, ``beta``), relaxed by ``relax``: ``g_aux * (r m_tar / m_aux + 1 - r)``.

"Shared" parameters are those every task's loss reaches, found from the
graph itself, so any model works without declaring its layout. GradNorm
takes ``W`` to be all of them (the paper picks the last shared layer only to
save compute); its weights' gradient ``sign(G_i - target_i) ||grad L_i||`` is
exact because ``G_i`` is linear in ``w_i``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn


@dataclass
class Equal:
    name: Literal["equal"] = "equal"


@dataclass
class Fixed:
    name: Literal["fixed"] = "fixed"
    weights: list[float] = field(default_factory=lambda: [1.0, 1.0])  # one per task, in the order of the tasks

    def __post_init__(self):
        if not self.weights or any(w < 0 for w in self.weights) or not any(w > 0 for w in self.weights):
            raise ValueError(f"weights must be non-negative with at least one positive, got {self.weights}")


@dataclass
class Uncertainty:
    name: Literal["uncertainty"] = "uncertainty"
    learning_rate: float = 0.01  # of the log-variances

    def __post_init__(self):
        if self.learning_rate <= 0:
            raise ValueError("learning_rate must be positive")


@dataclass
class GradNorm:
    name: Literal["gradnorm"] = "gradnorm"
    alpha: float = 1.5  # how strongly tasks that train slower are pushed (the paper's asymmetry)
    learning_rate: float = 0.025  # of the task weights

    def __post_init__(self):
        if self.alpha < 0 or self.learning_rate <= 0:
            raise ValueError(f"alpha must be >= 0 and learning_rate positive, got {self.alpha}, {self.learning_rate}")


@dataclass
class MetaBalance:
    name: Literal["metabalance"] = "metabalance"
    target: str | None = None  # the task the others assist; None = the first task
    relax: float = 0.7  # 1: auxiliary gradients take the target's magnitude; 0: left as they are
    beta: float = 0.9  # moving average of the gradient norms

    def __post_init__(self):
        if not 0 <= self.relax <= 1 or not 0 <= self.beta < 1:
            raise ValueError(f"relax must be in [0, 1] and beta in [0, 1), got {self.relax}, {self.beta}")


Balancing = Equal | Fixed | Uncertainty | GradNorm | MetaBalance
METHODS: tuple[type, ...] = (Equal, Fixed, Uncertainty, GradNorm, MetaBalance)


def _norm(grad: torch.Tensor) -> torch.Tensor:
    if grad.is_sparse:
        grad = grad.coalesce()._values()
    return grad.norm()


class Balancer(nn.Module):
    """``backward(losses (T,), auxiliary)`` writes ``.grad`` of every trainable parameter of ``model``
    and returns the combined loss; ``weights()`` gives each task's current weight.

    ``auxiliary`` (a model's own extra loss, e.g. AITM's calibrator) is added unweighted.
    """

    def __init__(self, config: Balancing, model: nn.Module, tasks: Sequence[str], regression: Sequence[bool]):
        super().__init__()
        self.config, self.tasks = config, list(tasks)
        self.params = [p for p in model.parameters() if p.requires_grad]
        T = len(self.tasks)
        self.register_buffer("regression", torch.tensor(list(regression), dtype=torch.bool))
        if isinstance(config, Fixed) and len(config.weights) != T:
            raise ValueError(f"fixed weights: {len(config.weights)} given for {T} tasks {self.tasks}")
        if isinstance(config, MetaBalance) and config.target is not None and config.target not in self.tasks:
            raise ValueError(f"metabalance target {config.target!r} is not one of the tasks {self.tasks}")
        self.log_var = nn.Parameter(torch.zeros(T))  # uncertainty: s = log sigma^2
        self.task_weight = nn.Parameter(torch.ones(T))  # gradnorm's w
        self.own: torch.optim.Optimizer | None = None
        if isinstance(config, Uncertainty):
            self.own = torch.optim.Adam([self.log_var], lr=config.learning_rate)
        elif isinstance(config, GradNorm):
            self.own = torch.optim.Adam([self.task_weight], lr=config.learning_rate)
        self.initial: torch.Tensor | None = None  # gradnorm: L(0)
        self.norms: dict[int, torch.Tensor] = {}  # metabalance: moving averages, per shared parameter (T,)
        self.scale = torch.ones(T)  # metabalance: mean factor last applied to each task's shared gradients

    def weights(self) -> list[float]:
        c = self.config
        if isinstance(c, Fixed):
            w = torch.tensor(c.weights)
        elif isinstance(c, Uncertainty):
            w = torch.exp(-self.log_var.detach()) * torch.where(self.regression, 0.5, 1.0)
        elif isinstance(c, GradNorm):
            w = self.task_weight.detach()
        elif isinstance(c, MetaBalance):
            w = self.scale
        else:
            w = torch.ones(len(self.tasks))
        return [float(x) for x in w]

    def backward(self, losses: torch.Tensor, auxiliary: torch.Tensor | float = 0.0) -> torch.Tensor:
        c = self.config
        if isinstance(c, GradNorm | MetaBalance) and len(self.tasks) > 1:
            return self._per_task(losses, auxiliary)
        if isinstance(c, Uncertainty):
            factor = torch.where(self.regression, 0.5, 1.0)
            total = (factor * torch.exp(-self.log_var) * losses).sum() + 0.5 * self.log_var.sum()
        elif isinstance(c, Fixed):
            total = (torch.tensor(c.weights) * losses).sum()
        else:
            total = losses.sum()
        total = total + auxiliary
        if self.own is not None:
            self.own.zero_grad(set_to_none=True)
        total.backward()
        if self.own is not None:
            self.own.step()
        return total.detach()

    def _per_task(self, losses: torch.Tensor, auxiliary: torch.Tensor | float) -> torch.Tensor:
        """GradNorm and MetaBalance: one gradient per task, combined by the method."""
        T = len(self.tasks)
        terms = list(losses) + ([auxiliary] if torch.is_tensor(auxiliary) and auxiliary.requires_grad else [])
        grads = [
            torch.autograd.grad(term, self.params, retain_graph=i < len(terms) - 1, allow_unused=True)
            for i, term in enumerate(terms)
        ]  # grads[task][param]
        norms = {  # (T,) per parameter; shared: every task's gradient reaches it (is not None or all zero)
            j: torch.stack([_norm(grads[t][j]) if grads[t][j] is not None else torch.zeros(()) for t in range(T)])
            for j in range(len(self.params))
        }
        norms = {j: n for j, n in norms.items() if bool((n > 0).all())}
        if isinstance(self.config, GradNorm):
            factors = self._gradnorm(losses.detach(), norms)  # (T,) the same on every parameter
            per_param = {j: factors for j in range(len(self.params))}
        else:
            factors = torch.ones(T)
            per_param = self._metabalance(norms)
        for j, p in enumerate(self.params):
            f = per_param.get(j, torch.ones(T))
            parts = [g[j] * f[t] for t, g in enumerate(grads[:T]) if g[j] is not None]
            parts += [g[j] for g in grads[T:] if g[j] is not None]  # the auxiliary loss, unweighted
            if parts:
                p.grad = sum(parts[1:], parts[0])
        return (losses.detach() * factors).sum() + sum(float(t.detach()) for t in terms[T:])

    def _gradnorm(self, losses: torch.Tensor, norms: dict[int, torch.Tensor]) -> torch.Tensor:
        T = len(self.tasks)
        if self.initial is None:
            self.initial = losses.clamp_min(1e-8)
        total = torch.stack(list(norms.values())).square().sum(0).sqrt() if norms else torch.zeros(T)  # ||grad_W L_i||
        w = self.task_weight.detach()
        factors = w.clone()  # the model trains on sum_i w_i L_i with the weights before this step's update
        G = w * total  # (T,)
        ratio = losses / self.initial  # (T,) inverse training rate
        target = G.mean() * (ratio / ratio.mean()) ** self.config.alpha
        self.own.zero_grad(set_to_none=True)
        self.task_weight.grad = torch.sign(G - target) * total
        self.own.step()
        with torch.no_grad():  # positive, summing to T
            self.task_weight.clamp_(min=1e-3)
            self.task_weight.mul_(T / self.task_weight.sum())
        return factors

    def _metabalance(self, norms: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
        c = self.config
        target = self.tasks.index(c.target) if c.target is not None else 0
        out = {}
        for j, n in norms.items():
            m = self.norms.get(j)
            m = n if m is None else c.beta * m + (1 - c.beta) * n
            self.norms[j] = m
            f = c.relax * m[target] / m + (1 - c.relax)  # (T,)
            f[target] = 1.0
            out[j] = f
        if out:
            self.scale = torch.stack(list(out.values())).mean(0)
        return out
