"""TaskScale: per-task affine outputs; the trainer counts a wrapped model's squared error in standard deviations."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rechub_core.layers import TaskScale
from rechub_core.training.trainer import task_losses


class Fixed(nn.Module):
    def __init__(self, outputs: torch.Tensor):
        super().__init__()
        self.outputs = outputs

    def forward(self, batch):
        return self.outputs


def test_each_task_column_is_scaled_then_shifted():
    inner = torch.tensor([[0.5, 2.0], [-1.0, 0.0]])
    model = TaskScale(Fixed(inner), shift=[0.0, 3.5], scale=[1.0, 1.2])
    expected = torch.tensor([[0.5, 3.5 + 2.4], [-1.0, 3.5]])
    torch.testing.assert_close(model({}), expected)
    assert set(model.state_dict()) == {"shift", "scale"}  # saved with the weights, not trained


@pytest.mark.parametrize(("shift", "scale"), [([0.0], [1.0, 2.0]), ([0.0, 1.0], [1.0, 0.0])])
def test_a_shift_and_a_positive_scale_per_task(shift, scale):
    with pytest.raises(ValueError, match="one shift and one positive scale per task"):
        TaskScale(Fixed(torch.zeros(1, 2)), shift, scale)


def test_squared_error_is_divided_by_the_scale_squared_and_binary_losses_are_not():
    outputs, labels = torch.tensor([[0.0, 10.0]]), torch.tensor([[1.0, 4.0]])
    regression = torch.tensor([False, True])
    plain = task_losses(outputs, labels, regression)
    scaled = task_losses(outputs, labels, regression, torch.tensor([1.0, 2.0]))
    assert plain[1] == 36.0 and scaled[1] == 9.0 and scaled[0] == plain[0]
