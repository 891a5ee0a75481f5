"""Mixtures of experts: the shared layer on its own, and the structure of the multi-task models built on it.

Shapes, gradients, padding and ONNX parity of every registered model are in ``test_models`` and
``test_export``; here, what tells the models apart: which experts and gates each task's output can see.
"""

import doctest

import pytest
import torch

import rechub_core.layers.experts
from rechub_core.layers import MLP, Experts, ExtractionLevel, gate
from rechub_core.models.multi_task.cgc import CGC, CGCConfig
from rechub_core.models.multi_task.mmoe import MMoE, MMoEConfig
from rechub_core.models.multi_task.moe import MoE, MoEConfig
from rechub_core.models.multi_task.ple import PLE, PLEConfig
from rechub_core.models.multi_task.shared_bottom import SharedBottom, SharedBottomConfig
from tests.unit.test_models import SCHEMA, B, batch

SMALL = {"embed_dim": 4, "expert_dims": [8, 6], "tower_dims": [5], "dropout": 0.0}


def _perturb(module: torch.nn.Module) -> None:
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p))


# --- the layer ---------------------------------------------------------------------------------


def test_experts_stack_each_expert_on_the_same_input():
    torch.manual_seed(0)
    experts = Experts(7, 3, [8, 4])
    x = torch.randn(5, 7)
    out = experts(x)
    assert out.shape == (5, 3, 4) and experts.output_dim == 4 and len(experts) == 3
    for e, expert in enumerate(experts):
        assert isinstance(expert, MLP)
        torch.testing.assert_close(out[:, e], expert(x))


def test_gate_weights_are_a_softmax_summing_to_one():
    torch.manual_seed(0)
    logits = torch.randn(5, 4) * 3
    identity = torch.eye(4).expand(5, 4, 4)  # expert e outputs the unit vector e: the mixture is the weights
    weights = gate(logits, identity)  # (5, 4)
    assert (weights >= 0).all()
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(5))
    torch.testing.assert_close(weights, torch.softmax(logits, dim=1))


def test_gate_with_all_weight_on_one_expert_returns_that_expert():
    torch.manual_seed(0)
    experts = torch.randn(5, 3, 6)
    logits = torch.full((5, 3), float("-inf"))
    logits[:, 1] = 0.0
    assert torch.equal(gate(logits, experts), experts[:, 1])
    # and equal logits average the experts
    torch.testing.assert_close(gate(torch.zeros(5, 3), experts), experts.mean(dim=1))


def test_extraction_level_shapes_and_gate_sizes():
    torch.manual_seed(0)
    level = ExtractionLevel(7, 3, num_task_experts=2, num_shared_experts=4, expert_dims=[8, 6], shared_gate=True)
    x = torch.randn(5, 7)
    tasks, shared = level([x, x, x], x)
    assert len(tasks) == 3 and all(t.shape == (5, 6) for t in tasks) and shared.shape == (5, 6)
    assert [g.out_features for g in level.task_gates] == [2 + 4] * 3  # own + shared experts
    assert level.shared_gate.out_features == 3 * 2 + 4  # every expert of the level
    top = ExtractionLevel(7, 3, 2, 4, [6])
    assert top.shared_gate is None and top([x, x, x], x)[1] is None


def test_extraction_level_task_output_sees_only_its_own_input_and_experts():
    torch.manual_seed(0)
    level = ExtractionLevel(7, num_tasks=2, num_task_experts=2, num_shared_experts=2, expert_dims=[6], shared_gate=True)
    x, other = torch.randn(5, 7), torch.randn(5, 7)
    tasks, shared = level([x, x], x)
    moved, moved_shared = level([x, other], x)  # task 1's input changes
    torch.testing.assert_close(moved[0], tasks[0])  # task 0 never reads it
    assert not torch.allclose(moved[1], tasks[1])
    assert not torch.allclose(moved_shared, shared)  # the shared gate mixes task 1's experts too
    _, from_shared = level([x, x], other)  # the shared input feeds the shared experts of every task
    assert not torch.allclose(from_shared[0], tasks[0])


def test_extraction_level_task_gate_reads_the_task_input_the_shared_gate_the_shared_input():
    torch.manual_seed(0)
    level = ExtractionLevel(7, num_tasks=2, num_task_experts=2, num_shared_experts=2, expert_dims=[6], shared_gate=True)
    with torch.no_grad():  # shared experts that ignore their input: the shared input can act only through a gate
        for expert in level.shared_experts:
            expert.net[0].weight.zero_()
    x, other = torch.randn(5, 7), torch.randn(5, 7)
    tasks, shared = level([x, x], x)
    moved, moved_shared = level([x, x], other)
    torch.testing.assert_close(moved, tasks)
    assert not torch.allclose(moved_shared, shared)


def test_docstring_examples():
    result = doctest.testmod(rechub_core.layers.experts)
    assert result.attempted > 0 and result.failed == 0


# --- the models --------------------------------------------------------------------------------


def test_cgc_task_ignores_other_tasks_experts():
    torch.manual_seed(0)
    model = CGC(SCHEMA, CGCConfig(**SMALL), num_tasks=3).eval()
    b = batch()
    before = model(b)
    _perturb(model.levels[0].task_experts[1])
    after = model(b)
    torch.testing.assert_close(after[:, [0, 2]], before[:, [0, 2]])
    assert not torch.allclose(after[:, 1], before[:, 1])
    _perturb(model.levels[0].shared_experts)  # the shared experts reach every task
    shared = model(b)
    assert all(not torch.allclose(shared[:, k], after[:, k]) for k in range(3))


def test_ple_lower_levels_share_all_experts_the_top_level_does_not():
    torch.manual_seed(0)
    model = PLE(SCHEMA, PLEConfig(num_levels=3, **SMALL), num_tasks=2).eval()
    assert [level.shared_gate is not None for level in model.levels] == [True, True, False]
    b = batch()
    before = model(b)
    _perturb(model.levels[2].task_experts[1])  # top level: only task 1's gate reads them
    top = model(b)
    torch.testing.assert_close(top[:, 0], before[:, 0])
    assert not torch.allclose(top[:, 1], before[:, 1])
    _perturb(model.levels[0].task_experts[1])  # lower level: the shared gate carries them to task 0's next level
    assert not torch.allclose(model(b)[:, 0], top[:, 0])


def test_ple_with_one_level_is_cgc():
    config = {"num_task_experts": 3, "num_shared_experts": 1, **SMALL}
    torch.manual_seed(0)
    cgc = CGC(SCHEMA, CGCConfig(**config), num_tasks=2).eval()
    torch.manual_seed(0)
    ple = PLE(SCHEMA, PLEConfig(num_levels=1, **config), num_tasks=2).eval()
    shapes = {k: v.shape for k, v in ple.state_dict().items()}
    assert {k: v.shape for k, v in cgc.state_dict().items()} == shapes
    assert not any("shared_gate" in k for k in shapes)
    torch.testing.assert_close(cgc(batch()), ple(batch()))
    deeper = PLE(SCHEMA, PLEConfig(num_levels=2, **config), num_tasks=2)
    assert len(deeper.levels) == 2 and len(deeper.state_dict()) > len(shapes)


def test_moe_tasks_read_one_mixture_mmoe_tasks_their_own():
    """With identical towers, MoE's tasks agree (one gate); MMoE's differ (a gate each)."""
    b = batch()
    for cls, config, same in [(MoE, MoEConfig(**SMALL), True), (MMoE, MMoEConfig(**SMALL), False)]:
        torch.manual_seed(0)
        model = cls(SCHEMA, config, num_tasks=2).eval()
        model.towers[1].load_state_dict(model.towers[0].state_dict())
        out = model(b)
        assert torch.allclose(out[:, 0], out[:, 1]) == same, cls.__name__
    assert len(MoE(SCHEMA, MoEConfig(), 3).gates) == 1 and len(MMoE(SCHEMA, MMoEConfig(), 3).gates) == 3


def test_shared_bottom_towers_read_one_bottom():
    torch.manual_seed(0)
    model = SharedBottom(SCHEMA, SharedBottomConfig(embed_dim=4, bottom_dims=[8, 6], tower_dims=[5]), num_tasks=3)
    model.eval()
    assert model.bottom.output_dim == 6 and all(t.net[0].in_features == 6 for t in model.towers)
    b = batch()
    shared = model.bottom(model.input(b))  # (B, 6)
    torch.testing.assert_close(model(b), torch.cat([t(shared) for t in model.towers], dim=1))
    _perturb(model.towers[2])
    torch.testing.assert_close(model(b)[:, :2], torch.cat([t(shared) for t in model.towers[:2]], dim=1))


@pytest.mark.parametrize("cls,config", [(MoE, MoEConfig), (MMoE, MMoEConfig)], ids=["moe", "mmoe"])
def test_moe_and_mmoe_match_their_definition(cls, config):
    """Tower t reads sum_e softmax(gate_t(x))_e expert_e(x); MoE's gate is one for all tasks."""
    torch.manual_seed(0)
    model = cls(SCHEMA, config(**SMALL, num_experts=3), num_tasks=2).eval()
    b = batch()
    x = model.input(b)
    experts = [expert(x) for expert in model.experts]  # E × (B, d)
    expected = []
    for task_gate, tower in zip([model.gates[0]] * 2 if cls is MoE else model.gates, model.towers):
        weights = torch.softmax(task_gate(x), dim=1)  # (B, E)
        expected.append(tower(sum(weights[:, e : e + 1] * experts[e] for e in range(3))))  # (B, 1)
    torch.testing.assert_close(model(b), torch.cat(expected, dim=1))
    assert model(b).shape == (B, 2)


def test_mmoe_keeps_its_parameter_names():
    """Checkpoints saved before the experts moved to ``layers.experts`` still load."""
    model = MMoE(SCHEMA, MMoEConfig(**SMALL, num_experts=3), num_tasks=2)
    assert {"experts.2.net.2.weight", "gates.1.weight", "towers.1.net.0.weight"} <= set(model.state_dict())


# --- configs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config,kwargs,message",
    [
        (SharedBottomConfig, {"bottom_dims": []}, "bottom_dims must not be empty"),
        (SharedBottomConfig, {"tower_dims": [0]}, "tower_dims must hold positive sizes"),
        (SharedBottomConfig, {"embed_dim": 0}, "embed_dim must be at least 1"),
        (MoEConfig, {"num_experts": 0}, "num_experts must be at least 1"),
        (MoEConfig, {"expert_dims": []}, "expert_dims must not be empty"),
        (MoEConfig, {"dropout": 1.0}, "dropout must be in"),
        (CGCConfig, {"num_task_experts": 0}, "num_task_experts must be at least 1"),
        (CGCConfig, {"num_shared_experts": -1}, "num_shared_experts must be at least 1"),
        (CGCConfig, {"groups": []}, "groups must not be empty"),
        (CGCConfig, {"dropout": -0.1}, "dropout must be in"),
        (PLEConfig, {"num_levels": 0}, "num_levels must be at least 1"),
        (PLEConfig, {"tower_dims": []}, "tower_dims must not be empty"),
        (PLEConfig, {"expert_dims": [16, 0]}, "expert_dims must hold positive sizes"),
    ],
)
def test_bad_config_raises(config, kwargs, message):
    with pytest.raises(ValueError, match=message):
        config(**kwargs)
