"""memo.losses: the regression losses MindMem and the LLM fusion model both train with."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from memo.errors import ConfigError  # noqa: E402
from memo.losses import LOSSES, check_loss, regression_loss  # noqa: E402

Y = torch.tensor([[0.1, 0.7], [0.5, 0.2], [0.9, 0.4], [0.3, 0.9]])
GOOD = torch.logit(Y.clamp(0.05, 0.95))  # scores in the targets' order
BAD = -GOOD


@pytest.mark.parametrize("kind", LOSSES)
def test_the_right_order_costs_less(kind):
    assert regression_loss(GOOD, Y, kind) < regression_loss(BAD, Y, kind)


@pytest.mark.parametrize("kind", ["pairwise", "spearman"])
def test_rank_terms_read_only_the_order(kind):
    """Spreading the logits apart keeps the order, so it must not lower the rank term (raw-logit RankNet
    did)."""
    a, b = regression_loss(GOOD, Y, kind), regression_loss(10 * GOOD + 3, Y, kind)
    assert b == pytest.approx(float(a), rel=1e-4)


def test_nan_targets_count_for_nothing():
    y = Y.clone()
    y[1, 0] = float("nan")  # video 1 has no first target
    for kind in LOSSES:
        whole = regression_loss(GOOD, y, kind, rank_weight=0.5)
        assert torch.isfinite(whole)
        keep = torch.tensor([0, 2, 3])
        first = regression_loss(GOOD[keep, :1], y[keep, :1], kind, rank_weight=0.5)
        second = regression_loss(GOOD[:, 1:], y[:, 1:], kind, rank_weight=0.5)
        assert float(whole) == pytest.approx((float(first) + float(second)) / 2, rel=1e-5)


def test_mse_is_divided_by_the_target_variance_and_weights_add_up():
    var = torch.tensor([0.04, 0.09])
    plain, scaled = regression_loss(BAD, Y, "mse"), regression_loss(BAD, Y, "mse", target_var=var)
    err = (torch.sigmoid(BAD) - Y) ** 2
    assert float(scaled) == pytest.approx(float((err / var).mean()), rel=1e-5)
    assert float(plain) == pytest.approx(float(err.mean()), rel=1e-5)
    both = regression_loss(BAD, Y, "mse+pairwise", rank_weight=0.25)
    assert float(both) == pytest.approx(
        float(plain) + 0.25 * float(regression_loss(BAD, Y, "pairwise")), rel=1e-5
    )


def test_unknown_loss_is_one_clear_error():
    with pytest.raises(
        ConfigError, match=r"\[llm\] loss = 'mse\+rank' is not known; use one of mse, spearman"
    ):
        check_loss("mse+rank", "llm")
