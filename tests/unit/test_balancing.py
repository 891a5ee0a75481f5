"""Multi-task loss balancing: each method's weights move the way its paper prescribes, on planted
two-task problems, and every model trains under every method."""

import pytest
import torch
from torch import nn

from rechub_core.data.tables import TensorTable
from rechub_core.models.registry import REGISTRY, build
from rechub_core.training.balancing import Balancer, Equal, Fixed, GradNorm, MetaBalance, Uncertainty
from rechub_core.training.trainer import TrainConfig, fit_pointwise, task_losses
from tests.unit.test_models import SCHEMA, batch


class Shared(nn.Module):
    """A shared linear layer and one linear head per task: ``(B, T)``."""

    def __init__(self, d: int = 8, tasks: int = 2):
        super().__init__()
        self.shared = nn.Linear(d, 16)
        self.heads = nn.ModuleList(nn.Linear(16, 1) for _ in range(tasks))

    def forward(self, x):
        h = torch.relu(self.shared(x))
        return torch.cat([head(h) for head in self.heads], dim=1)


def planted(noise=(0.1, 0.1), scale=(1.0, 1.0), n=512, seed=0):
    """Two regression tasks on the same inputs: y_t = scale_t * (x @ w_t) + noise_t."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    w = torch.randn(8, 2, generator=g)
    y = (x @ w) * torch.tensor(scale) + torch.randn(n, 2, generator=g) * torch.tensor(noise)
    return x, y


def train(config, x, y, steps=300, regression=(True, True), lr=0.01, seed=0):
    torch.manual_seed(seed)
    model = Shared()
    balancer = Balancer(config, model, ["a", "b"], list(regression))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        losses = task_losses(model(x), y, balancer.regression)
        optimizer.zero_grad()
        balancer.backward(losses)
        optimizer.step()
    return model, balancer


def grads(model):
    return torch.cat([p.grad.reshape(-1) for p in model.parameters()])


def per_task_grads(model, x, y, regression):
    out = []
    for t in range(2):
        model.zero_grad()
        task_losses(model(x), y, regression)[t].backward()
        out.append({n: p.grad.clone() for n, p in model.named_parameters()})
    return out


def test_equal_and_fixed_weight_the_task_gradients():
    x, y = planted()
    torch.manual_seed(0)
    model = Shared()
    regression = torch.tensor([True, True])
    g = per_task_grads(model, x, y, regression)
    for config, w in ((Equal(), (1.0, 1.0)), (Fixed(weights=[0.2, 3.0]), (0.2, 3.0))):
        model.zero_grad()
        Balancer(config, model, ["a", "b"], [True, True]).backward(task_losses(model(x), y, regression))
        for name, p in model.named_parameters():
            assert torch.allclose(p.grad, w[0] * g[0][name] + w[1] * g[1][name], atol=1e-6)


def test_uncertainty_weighs_the_noisier_task_down_and_learns_its_variance():
    x, y = planted(noise=(0.1, 1.0))
    model, balancer = train(Uncertainty(learning_rate=0.05), x, y, steps=600)
    w = balancer.weights()
    assert w[1] < 0.5 * w[0], w
    # the optimum of exp(-s) L / 2 + s / 2 is s = log L: the learned variance is the task's squared error
    with torch.no_grad():
        mse = task_losses(model(x), y, balancer.regression)
    assert torch.allclose(balancer.log_var.detach().exp(), mse, rtol=0.3), (balancer.log_var.exp(), mse)


def test_uncertainty_classification_form():
    """A binary task's term is exp(-s) L + s / 2; a regression task's exp(-s) L / 2 + s / 2."""
    model = Shared()
    balancer = Balancer(Uncertainty(), model, ["a", "b"], [False, True])
    with torch.no_grad():
        balancer.log_var.copy_(torch.tensor([0.5, -0.3]))
    losses = torch.tensor([0.7, 2.0], requires_grad=True)
    value = balancer.backward(losses)
    expected = torch.exp(torch.tensor(-0.5)) * 0.7 + 0.5 * torch.exp(torch.tensor(0.3)) * 2.0 + 0.5 * (0.5 - 0.3)
    assert torch.isclose(value, expected, atol=1e-6)
    assert balancer.log_var.detach()[0] != 0.5  # the log-variances took a step


def test_gradnorm_lowers_the_weight_of_the_task_with_larger_gradients():
    """Task b's targets are 10x larger, so its gradients are: GradNorm equalises w_i ||grad L_i||."""
    x, y = planted(scale=(1.0, 10.0))
    _, balancer = train(GradNorm(alpha=0.0, learning_rate=0.02), x, y, steps=200)
    w = balancer.weights()
    assert w[1] < 0.5 < 1.5 < w[0], w
    assert abs(sum(w) - 2.0) < 1e-4  # renormalised to the number of tasks


def test_gradnorm_raises_the_weight_of_the_task_that_trains_slower():
    """Same gradient scale, but task b's noise keeps its loss near its start: with alpha > 0 its
    relative inverse training rate is higher, so its weight goes up."""
    x, y = planted(noise=(0.01, 3.0))
    _, balancer = train(GradNorm(alpha=1.5, learning_rate=0.02), x, y, steps=200)
    w = balancer.weights()
    assert w[1] > w[0], w


def test_metabalance_rescales_auxiliary_gradients_to_the_target_magnitude():
    x, y = planted(scale=(1.0, 10.0))
    torch.manual_seed(0)
    model = Shared()
    regression = torch.tensor([True, True])
    g = per_task_grads(model, x, y, regression)
    model.zero_grad()
    balancer = Balancer(MetaBalance(target="a", relax=1.0, beta=0.0), model, ["a", "b"], [True, True])
    balancer.backward(task_losses(model(x), y, regression))
    for name, p in model.named_parameters():
        if name.startswith("shared"):  # reached by both tasks: b's gradient takes a's norm on each tensor
            factor = g[0][name].norm() / g[1][name].norm()
            assert torch.allclose(p.grad, g[0][name] + factor * g[1][name], atol=1e-5)
        else:  # a head: only its own task's gradient, unchanged
            t = int(name.split(".")[1])
            assert torch.allclose(p.grad, g[t][name], atol=1e-6)
    assert balancer.weights()[0] == 1.0 and balancer.weights()[1] < 0.2  # b's gradients were 10x larger
    # relax blends towards no rescaling
    model.zero_grad()
    half = Balancer(MetaBalance(target="a", relax=0.5, beta=0.0), model, ["a", "b"], [True, True])
    half.backward(task_losses(model(x), y, regression))
    assert balancer.weights()[1] < half.weights()[1] < 1.0


def test_metabalance_moving_average_of_norms():
    x, y = planted(scale=(1.0, 10.0))
    _, balancer = train(MetaBalance(target="a", relax=1.0, beta=0.9), x, y, steps=5)
    assert balancer.weights()[1] < 0.5


def tiny_table(n_batches=8) -> TensorTable:
    parts = [batch(seed) for seed in range(n_batches)]
    cols = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
    g = torch.Generator().manual_seed(0)
    cols["click"] = torch.randint(0, 2, (len(cols["click"]),), generator=g)
    cols["conversion"] = cols["click"] * torch.randint(0, 2, (len(cols["click"]),), generator=g)
    cols["log_dwell"] = cols["click"] * (3 + torch.randn(len(cols["click"]), generator=g))
    return TensorTable(cols)


METHODS = [Equal(), Fixed(weights=[1.0, 0.5]), Uncertainty(), GradNorm(), MetaBalance(target="conversion")]


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.name)
@pytest.mark.parametrize("name", sorted(REGISTRY["multi_task"]))
def test_every_model_trains_under_every_method(name, method):
    table = tiny_table()
    entry = REGISTRY["multi_task"][name]
    funnel = getattr(entry.model, "funnel", False)
    tasks = ["click", "conversion"] if funnel or method.name == "metabalance" else ["click", "log_dwell"]
    regression = () if "log_dwell" not in tasks else ("log_dwell",)
    torch.manual_seed(0)
    model = build("multi_task", entry.config(), SCHEMA, num_tasks=2)
    before = [p.detach().clone() for p in model.parameters()]
    history = fit_pointwise(
        model, table, tasks, TrainConfig(epochs=2, batch_size=16), generator=torch.Generator().manual_seed(0),
        valid=table, regression=regression, balancing=method,
    )
    assert len(history) >= 1
    for record in history:
        assert all(torch.isfinite(torch.tensor(v)) for k, v in record.items() if k != "valid_auc" or v == v)
        assert {f"weight_{t}" for t in tasks} <= set(record)
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))
