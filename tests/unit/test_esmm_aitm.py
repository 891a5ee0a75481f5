"""ESMM's entire-space product of towers, exact and stable, and its chain; AITM's calibrator, its transfer only
forward along the funnel, and its attention. Shapes, gradients, padding and ONNX parity: test_models, test_export."""

import pytest
import torch
import torch.nn.functional as F

from rechub_core.models.multi_task.aitm import AITM, AITMConfig, expectation_calibration
from rechub_core.models.multi_task.esmm import ESMM, ESMMConfig, chain_logits, product_logit
from tests.unit.checks import check_auxiliary_loss_scales
from tests.unit.test_models import SCHEMA, B, batch


# --- ESMM --------------------------------------------------------------------------------------


def test_esmm_ctcvr_column_is_the_product_of_the_towers():
    torch.manual_seed(0)
    model = ESMM(SCHEMA, ESMMConfig(), num_tasks=2).eval()
    b = batch()
    logits, conditional = model(b), model.conditional_logits(b)
    assert logits.shape == conditional.shape == (B, 2)
    torch.testing.assert_close(logits[:, 0], conditional[:, 0])  # column 0: pCTR itself
    expected = torch.sigmoid(conditional[:, 0]) * torch.sigmoid(conditional[:, 1])  # pCTR · pCVR
    torch.testing.assert_close(torch.sigmoid(logits[:, 1]), expected, atol=1e-6, rtol=0)


def _reference_product_logit(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """In float64, the other way round: log p = logsigmoid(a) + logsigmoid(b), logit = log p - log(1 - p)."""
    log_p = F.logsigmoid(a.double()) + F.logsigmoid(b.double())
    return log_p - torch.log(-torch.expm1(log_p))


def test_esmm_product_logit_is_finite_and_exact_for_extreme_logits():
    values = torch.tensor([-40.0, -15.0, -1.0, 0.0, 2.0, 15.0, 40.0])
    a, b = torch.meshgrid(values, values, indexing="ij")
    a, b = a.reshape(-1).requires_grad_(), b.reshape(-1)  # (49,)
    out = product_logit(a, b)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.double(), _reference_product_logit(a, b), rtol=1e-6, atol=1e-5)
    # e.g. both stages near certain: p ≈ 1 - 2e-40, logit ≈ 40 - log 2; both near impossible: ≈ -80
    assert product_logit(torch.tensor(40.0), torch.tensor(40.0)).item() == pytest.approx(40 - 0.6931472, abs=1e-5)
    assert product_logit(torch.tensor(-40.0), torch.tensor(-40.0)).item() == pytest.approx(-80.0, abs=1e-5)
    # and the loss's gradient stays finite there
    F.binary_cross_entropy_with_logits(out, torch.ones_like(out)).backward()
    assert torch.isfinite(a.grad).all() and a.grad.abs().sum() > 0


def test_esmm_trains_the_cvr_tower_on_non_clicked_rows():
    """The CTCVR loss of impressions that were never clicked reaches the CVR tower: the entire space."""
    torch.manual_seed(0)
    model = ESMM(SCHEMA, ESMMConfig(dropout=0.0), num_tasks=2)
    b = batch()
    unclicked = b["click"] == 0
    assert unclicked.any()
    logits = model(b)  # (B, 2)
    loss = F.binary_cross_entropy_with_logits(logits[unclicked, 1], b["conversion"][unclicked].float())
    loss.backward()
    for name, p in model.towers[1].named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    for name, p in model.towers[0].named_parameters():  # the product also trains the CTR tower
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_esmm_chains_three_stages():
    torch.manual_seed(0)
    model = ESMM(SCHEMA, ESMMConfig(), num_tasks=3).eval()
    b = batch()
    logits, conditional = model(b), model.conditional_logits(b)
    assert logits.shape == conditional.shape == (B, 3)
    stages = torch.sigmoid(conditional)  # (B, 3): q_1, q_2, q_3
    torch.testing.assert_close(torch.sigmoid(logits), torch.cumprod(stages, dim=1), atol=1e-6, rtol=0)
    assert (torch.sigmoid(logits[:, 1:]) <= torch.sigmoid(logits[:, :-1])).all()  # the funnel narrows
    torch.testing.assert_close(chain_logits(conditional), logits)


@pytest.mark.parametrize("model,config", [(ESMM, ESMMConfig), (AITM, AITMConfig)])
def test_funnel_models_need_two_tasks(model, config):
    with pytest.raises(ValueError, match="num_tasks"):
        model(SCHEMA, config(), num_tasks=1)
    assert model.funnel is True


def test_configs_are_validated():
    with pytest.raises(ValueError):
        ESMMConfig(tower_dims=[])
    with pytest.raises(ValueError):
        ESMMConfig(dropout=1.0)
    with pytest.raises(ValueError, match="calibrator_weight"):
        AITMConfig(calibrator_weight=-0.1)
    with pytest.raises(ValueError):
        AITMConfig(embed_dim=0)


# --- AITM --------------------------------------------------------------------------------------


def test_calibrator_by_hand():
    monotone = torch.tensor([[2.0, 1.0, -3.0], [0.0, 0.0, -1.0]])  # σ never rises along the funnel
    assert expectation_calibration(monotone).item() == 0.0
    rising = torch.tensor([[0.0, 1.0, -3.0], [0.0, -1.0, 2.0]])  # row 0 rises at stage 2, row 1 at stage 3
    sig = torch.sigmoid(rising)
    expected = ((sig[0, 1] - sig[0, 0]) / 2) + ((sig[1, 2] - sig[1, 1]) / 2)  # sum over t of the batch mean
    assert expectation_calibration(rising).item() == pytest.approx(expected.item(), abs=1e-7)
    assert expected > 0


def test_aitm_auxiliary_loss_is_the_weighted_calibrator():
    torch.manual_seed(0)
    b = batch()

    def make(weight):
        torch.manual_seed(0)
        return AITM(SCHEMA, AITMConfig(calibrator_weight=weight), num_tasks=2)

    model = check_auxiliary_loss_scales(make, 0.25, b)
    logits, auxiliary = model.logits_and_auxiliary_loss(b)
    torch.testing.assert_close(logits, model(b))
    torch.testing.assert_close(auxiliary, expectation_calibration(logits))
    # zero when the model's predictions are monotone: push the conversion head far down
    with torch.no_grad():
        model.heads[1].bias.fill_(-50.0)
    assert model.logits_and_auxiliary_loss(b)[1].item() == 0.0
    with torch.no_grad():  # and positive when conversion is predicted likelier than click
        model.heads[1].bias.fill_(50.0)
    assert model.logits_and_auxiliary_loss(b)[1].item() > 0
    assert make(0.0).eval().logits_and_auxiliary_loss(b)[1].item() == 0.0


def test_aitm_first_task_ignores_later_towers():
    torch.manual_seed(0)
    model = AITM(SCHEMA, AITMConfig(), num_tasks=3).eval()
    b = batch()
    before = model(b)
    assert before.shape == (B, 3)
    with torch.no_grad():
        for p in [*model.towers[2].parameters(), *model.heads[2].parameters()]:
            p.add_(torch.randn_like(p))
    after = model(b)
    torch.testing.assert_close(after[:, :2], before[:, :2])  # columns 0 and 1 do not read tower 3
    assert not torch.allclose(after[:, 2], before[:, 2])
    with torch.no_grad():
        for p in model.towers[1].parameters():
            p.add_(torch.randn_like(p))
    again = model(b)
    torch.testing.assert_close(again[:, 0], before[:, 0])
    assert not torch.allclose(again[:, 1], before[:, 1])


def test_aitm_transfer_reaches_later_tasks():
    """The first tower's output flows into the second task through the transferred information p_1."""
    torch.manual_seed(0)
    model = AITM(SCHEMA, AITMConfig(dropout=0.0), num_tasks=2).eval()
    b = batch()
    before = model(b)
    with torch.no_grad():
        for p in model.towers[0].parameters():
            p.add_(torch.randn_like(p))
    assert not torch.allclose(model(b)[:, 1], before[:, 1])


def test_aitm_attention_weights_sum_to_one():
    torch.manual_seed(0)
    model = AITM(SCHEMA, AITMConfig(tower_dims=[8]), num_tasks=2)
    q, p = torch.randn(B, 8) * 3, torch.randn(B, 8) * 3
    weights = model.ait.weights(q, p)
    assert weights.shape == (B, 2)
    assert (weights > 0).all()
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(B))
    # z is the weighted sum of h3 of the two candidates
    expected = weights[:, :1] * model.ait.h3(q) + weights[:, 1:] * model.ait.h3(p)
    torch.testing.assert_close(model.ait(q, p), expected)
    # by the paper's score: <h1(u), h2(u)> / sqrt(k)
    scores = torch.stack([(model.ait.h1(u) * model.ait.h2(u)).sum(-1) for u in (q, p)], dim=1) / 8**0.5
    torch.testing.assert_close(weights, torch.softmax(scores, dim=1))

