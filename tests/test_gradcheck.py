"""The gradient checker itself: it must measure correctly and, above all, catch a wrong backward."""
import numpy as np
import pytest

from tinyresnet import functional as F
from tinyresnet import nn
from tinyresnet.gradcheck import (
    DirectionalError, GradCheckReport, check_direction, check_module, check_op, direction_scale,
    numerical_gradient, rel_error,
)


def test_numerical_gradient_of_a_scalar_function(rng):
    x = rng.standard_normal((3, 4))
    grad = numerical_gradient(lambda x: float((x**3).sum()), x)
    np.testing.assert_allclose(grad, 3 * x**2, rtol=1e-7, atol=1e-9)


def test_numerical_gradient_weights_by_dy_and_restores_x(rng):
    x = rng.standard_normal(5)
    dy = rng.standard_normal((2, 5))
    before = x.copy()
    grad = numerical_gradient(lambda x: np.stack([np.sin(x), x**2]), x, dy)
    np.testing.assert_allclose(grad, dy[0] * np.cos(x) + dy[1] * 2 * x, rtol=1e-7, atol=1e-9)
    np.testing.assert_array_equal(x, before)


def test_numerical_gradient_of_a_function_returning_a_view(rng):
    """f(x) may return x itself or a reshaped view; the checker must snapshot each output."""
    x = rng.standard_normal((2, 3))
    np.testing.assert_allclose(numerical_gradient(lambda x: x.reshape(-1), x, np.arange(6.0)),
                               np.arange(6.0).reshape(2, 3), rtol=1e-8)


def test_numerical_gradient_needs_contiguous_x(rng):
    x = rng.standard_normal((4, 4)).T
    with pytest.raises(ValueError, match="numerical_gradient: x must be contiguous"):
        numerical_gradient(lambda x: x.sum(), x)


def test_rel_error_reports_the_worst_element():
    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    n = a.copy()
    n[1, 0] = 3.3
    error = rel_error(a, n, "w")
    assert error.worst_index == (1, 0)
    assert (error.analytic_at_worst, error.numeric_at_worst) == (3.0, 3.3)
    assert error.norm_error == pytest.approx(0.3 / np.linalg.norm(n))
    assert error.max_error == pytest.approx(0.3 / 6.3)
    assert "w: rel. error" in str(error) and "(1, 0)" in str(error)
    assert rel_error(a, a).norm_error == 0 and rel_error(a, a).passed()
    with pytest.raises(ValueError, match=r"rel_error: g has shape \(2, 2\), numeric gradient \(4,\)"):
        rel_error(a, n.reshape(-1), "g")


def test_round_off_sized_errors_on_a_zero_gradient_pass():
    error = rel_error(np.array([1e-17, 0.0]), np.array([-3e-11, 2e-12]))
    assert error.norm_error == pytest.approx(1.0, abs=0.01)  # relative error means nothing here
    assert error.passed()
    assert not rel_error(np.array([1e-3]), np.array([0.0])).passed()


def _half_dw(dy, cache):
    dx, dw, db = F.conv2d_backward(dy, cache)
    return dx, 0.5 * dw, db


def test_check_op_catches_a_wrong_backward(rng):
    x, w, b = rng.standard_normal((2, 2, 4, 4)), rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3)
    good = check_op(F.conv2d_forward, F.conv2d_backward, (x, w, b), names=["dx", "dw", "db"])
    assert good.ok, str(good)
    bad = check_op(F.conv2d_forward, _half_dw, (x, w, b), names=["dx", "dw", "db"])
    assert not bad.ok
    text = str(bad)
    assert text.startswith("gradient check FAILED")
    assert "WRONG dw: rel. error norm-wise 5.00e-01" in text
    assert "ok    dx" in text and "ok    db" in text
    assert bad.worst.name == "dw"


def test_check_op_catches_a_missing_term():
    """Batch norm's backward without the mean and variance terms (the eval-mode formula used in
    training) looks plausible and is wrong."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2, 3, 3))
    gamma, beta = rng.standard_normal(2), rng.standard_normal(2)

    def naive_backward(dy, cache):
        x_hat, inv_std, gamma, _, _ = cache
        return dy * (gamma * inv_std)[None, :, None, None], None, None

    report = check_op(F.batchnorm2d_forward, naive_backward, (x, gamma, beta), wrt=[0], names=["dx"])
    assert not report.ok and "WRONG dx" in str(report)


class HalfBiasLinear(nn.Linear):
    """A Linear whose bias gradient is off by a factor 2."""

    def backward(self, dy):
        dx = super().backward(dy)
        self.bias.grad *= 0.5
        return dx


class WrongInputGradReLU(nn.ReLU):
    """Passes the gradient through everywhere, as if the ReLU were the identity."""

    def backward(self, dy):
        self._pop_cache()
        return dy


def test_check_module_catches_a_wrong_parameter_gradient(rng):
    good = check_module(nn.Linear(3, 2).double(), rng.standard_normal((4, 3)))
    assert good.ok, str(good)
    report = check_module(HalfBiasLinear(3, 2).double(), rng.standard_normal((4, 3)))
    assert not report.ok
    assert "WRONG bias" in str(report) and "ok    weight" in str(report) and "ok    input" in str(report)


def test_check_module_names_nested_parameters(rng):
    model = nn.Sequential(nn.Linear(3, 3), nn.Sequential(HalfBiasLinear(3, 2))).double()
    report = check_module(model, rng.standard_normal((2, 3)))
    assert [e.name for e in report.errors] == ["input", "0.weight", "0.bias", "1.0.weight", "1.0.bias"]
    assert not report.ok and "WRONG 1.0.bias" in str(report)
    assert all(m._caches == [] for m in model.modules())


def _small_net(relu=nn.ReLU):
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), relu(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 4)).double()


@pytest.mark.parametrize("with_loss", [False, True])
def test_check_direction_passes_on_a_correct_network(rng, with_loss):
    model = _small_net()
    x = rng.standard_normal((2, 2, 4, 4))
    before = {k: p.data.copy() for k, p in model.named_parameters()}
    x_before = x.copy()
    kwargs = dict(loss_fn=nn.CrossEntropyLoss(0.1), labels=np.array([1, 3])) if with_loss else {}
    error = check_direction(model, x, **kwargs)
    assert error.passed(1e-7), str(error)
    # the input and the parameters are restored, up to the round-off of +h v - h v
    np.testing.assert_allclose(x, x_before, rtol=0, atol=1e-12)
    for k, p in model.named_parameters():
        np.testing.assert_allclose(p.data, before[k], rtol=0, atol=1e-12, err_msg=k)


@pytest.mark.parametrize("broken", ["relu", "bias"])
def test_check_direction_fails_on_a_broken_module(rng, broken):
    if broken == "relu":
        model = _small_net(relu=WrongInputGradReLU)
    else:
        model = _small_net()
        model._modules["5"] = HalfBiasLinear(3, 4).double()
    error = check_direction(model, rng.standard_normal((2, 2, 4, 4)))
    assert not error.passed(1e-7)
    assert error.norm_error > 1e-3, str(error)


def test_direction_is_scaled_to_each_tensor_and_zero_tensors_get_the_floor(rng):
    model = _small_net()
    model[1].bias.data[...] = 0.0  # BN beta as initialised: no size of its own
    x = rng.standard_normal((2, 2, 4, 4))
    error = check_direction(model, x, zero_scale=0.5)
    assert isinstance(error, DirectionalError) and error.passed(1e-7), str(error)
    assert set(error.scales) == {"input"} | {n for n, _ in model.named_parameters()}
    for name, p in model.named_parameters():
        expected = 0.5 if name == "1.bias" else np.sqrt(np.mean(p.data**2))
        assert error.scales[name] == pytest.approx(expected, rel=1e-12), name
    assert error.scales["input"] == pytest.approx(np.sqrt(np.mean(x**2)))
    assert direction_scale(np.zeros(3)) == 1.0


def test_step_agrees_best_among_those_within_round_off(rng):
    """Of the steps whose quotient agrees with the next smaller step's within ten times the
    round-off measured at the probe step, the kept one agrees best."""
    model, x = _small_net(), rng.standard_normal((2, 2, 4, 4))
    steps = (1e-1, 1e-2, 1e-6, 1e-7)  # 1e-1 and 1e-2: truncation error far above round-off
    error = check_direction(model, x, steps=steps, noise_step=1e-10)
    quotients = dict(error.tried)
    assert set(quotients) == set(steps) | {1e-10} and error.step in steps
    assert error.numeric == quotients[error.step] and error.passed(1e-7), str(error)
    noise = abs(quotients[1e-10] - quotients[1e-7]) * 1e-10
    gaps = {big: abs(quotients[big] - quotients[small])
            for big, small in zip(steps, steps[1:])
            if abs(quotients[big] - quotients[small]) <= 10 * noise * (1 / big + 1 / small)}
    assert list(gaps) == [1e-6]  # the two large steps are rejected
    assert error.step == 1e-6 and error.agreement == pytest.approx(gaps[1e-6] / abs(quotients[1e-7]))
    assert "of 5 tried the one that agrees best" in str(error)


def test_no_agreement_falls_back_to_the_smallest_step(rng):
    model, x = _small_net(), rng.standard_normal((2, 2, 4, 4))
    error = check_direction(model, x, steps=(1.0, 0.5), noise_step=1e-10)
    assert error.step == 0.5 and error.agreement != error.agreement  # nan: no pair agreed
    assert "no two agreed within round-off" in str(error)


def test_a_given_step_is_used_alone(rng):
    error = check_direction(_small_net(), rng.standard_normal((2, 2, 4, 4)), h=3e-6)
    assert error.step == 3e-6 and [h for h, _ in error.tried] == [3e-6]
    assert error.passed(1e-7) and "step 3e-06 of each tensor's RMS, as given" in str(error)


def test_report_with_no_errors_is_ok():
    report = GradCheckReport()
    assert report.ok and report.worst is None
    assert str(report) == "gradient check passed (tolerance 1e-07)"


def test_a_zero_gradient_passes_within_the_roundoff_of_the_quotient(rng):
    """A conv bias before batch norm has a zero gradient: its numerical one is pure round-off,
    about eps * sum|y * dy| / h (1.2e-9 was seen under the Sandybridge kernel, above the old fixed
    1e-9), so the absolute floor follows that round-off; a wrong bias gradient still fails."""
    model = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.BatchNorm2d(1)).double()
    report = check_module(model, rng.standard_normal((2, 1, 3, 3)))
    assert report.ok and 1e-9 <= report.atol < 1e-6, str(report)
    model[0].backward = lambda dy, conv=model[0]: _bias_off_by(conv, dy, 1e-3)
    assert not check_module(model, rng.standard_normal((2, 1, 3, 3))).ok


def _bias_off_by(conv, dy, delta):
    dx = type(conv).backward(conv, dy)
    conv.bias.grad = conv.bias.grad + delta
    return dx
