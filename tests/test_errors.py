"""Bad input meets a clear error at the layer boundary: the layer (by its qualified name inside a
model), what was expected and what came.  Never a bare NumPy error from deep inside an op."""
from collections import OrderedDict

import numpy as np
import pytest

from tinyresnet import nn


@pytest.fixture
def check_finite():
    nn.set_check_finite(True)
    yield
    nn.set_check_finite(False)


def _model():
    return nn.Sequential(OrderedDict([
        ("features", nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                                   nn.Conv2d(4, 8, 3, padding=1), nn.MaxPool2d(2))),
        ("pool", nn.AdaptiveAvgPool2d(1)),
        ("flatten", nn.Flatten()),
        ("fc", nn.Linear(8, 10)),
    ]))


def _x(*shape, dtype=np.float32):
    return np.random.default_rng(0).standard_normal(shape).astype(dtype)


# ---- wrong rank and channel count -------------------------------------------------------------

def test_wrong_rank_names_the_layer():
    with pytest.raises(ValueError, match=r"^Conv2d: conv2d: expected a 4-D input \(N, C, H, W\), got shape \(3, 8, 8\)$"):
        nn.Conv2d(3, 4, 3)(_x(3, 8, 8))


def test_wrong_rank_inside_a_model_names_the_qualified_layer():
    with pytest.raises(ValueError, match=r"^Conv2d 'features\.0': conv2d: expected a 4-D input .*got shape \(3, 8, 8\)$"):
        _model()(_x(3, 8, 8))


@pytest.mark.parametrize("make, x, message", [
    (lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(5, 2, 1)), _x(1, 3, 6, 6),
     r"^Conv2d '1': conv2d: expected input with 5 channels, shape \(N, 5, H, W\), got shape \(1, 4, 4, 4\)$"),
    (lambda: nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(6)), _x(2, 3, 4, 4),
     r"^BatchNorm2d '1': batchnorm2d: expected input of shape \(N, 6, H, W\) to match weight of shape \(6,\), got \(2, 4, 4, 4\)$"),
    (lambda: nn.Sequential(nn.Flatten(), nn.Linear(10, 2)), _x(2, 3, 2, 2),
     r"^Linear '1': linear: expected input of shape \(N, 10\), got \(2, 12\)$"),
])
def test_wrong_channel_count_names_the_qualified_layer(make, x, message):
    with pytest.raises(ValueError, match=message):
        make()(x)


def test_nested_names_and_a_single_prefix():
    model = _model()
    with pytest.raises(ValueError) as info:
        model(_x(2, 5, 8, 8))
    text = str(info.value)
    assert text.startswith("Conv2d 'features.0': conv2d: expected input with 3 channels")
    assert "Sequential" not in text and text.count("Conv2d '") == 1


def test_kernel_larger_than_padded_input():
    with pytest.raises(ValueError, match=r"^Conv2d '0': conv2d: kernel 7 .*larger than the padded input height 2 \+ 2\*1 = 4$"):
        nn.Sequential(nn.Conv2d(1, 1, 7, padding=1))(_x(1, 1, 2, 9))
    with pytest.raises(ValueError, match=r"^MaxPool2d 'features.4': maxpool2d: kernel 2 .*larger than the padded input height 1"):
        _model()(_x(1, 3, 1, 4))
    with pytest.raises(ValueError, match=r"^AvgPool2d: avgpool2d: kernel 3 .*larger than the padded input width 2"):
        nn.AvgPool2d(3)(_x(1, 1, 5, 2))


# ---- dtypes -----------------------------------------------------------------------------------

def test_mixed_float32_and_float64_is_refused():
    with pytest.raises(TypeError, match=r"^Conv2d 'features\.0': conv2d: all operands must share one dtype .*input=float64, weight=float32"):
        _model()(_x(1, 3, 8, 8, dtype=np.float64))
    with pytest.raises(TypeError, match=r"^BatchNorm2d: batchnorm2d: .*input=float64, weight=float32"):
        nn.BatchNorm2d(2)(_x(2, 2, 2, 2, dtype=np.float64))
    with pytest.raises(TypeError, match=r"^Linear: linear: .*input=float32, weight=float64"):
        nn.Linear(2, 2).double()(_x(1, 2))


def test_integer_and_non_array_input_are_refused():
    with pytest.raises(TypeError, match=r"^ReLU: relu: expected a float32 or float64 input, got dtype int64$"):
        nn.ReLU()(np.arange(4))
    with pytest.raises(TypeError, match=r"^MaxPool2d: maxpool2d: input must be a NumPy or CuPy array, got list$"):
        nn.MaxPool2d(2)([[1.0, 2.0]])


# ---- labels -----------------------------------------------------------------------------------

@pytest.mark.parametrize("labels, error, message", [
    (np.array([0.0, 1.0]), TypeError, r"expected integer class labels, got float64"),
    (np.array([0, 10]), ValueError, r"labels must lie in \[0, 9\] for 10 classes, got values in \[0, 10\]"),
    (np.array([-1, 3]), ValueError, r"labels must lie in \[0, 9\] for 10 classes, got values in \[-1, 3\]"),
    (np.array([[0], [1]]), ValueError, r"expected labels of shape \(2,\) for logits \(2, 10\), got \(2, 1\)"),
    (np.array([0, 1, 2]), ValueError, r"expected labels of shape \(2,\) for logits \(2, 10\), got \(3,\)"),
])
def test_bad_labels(labels, error, message):
    with pytest.raises(error, match="^CrossEntropyLoss: cross_entropy: " + message):
        nn.CrossEntropyLoss()(_x(2, 10), labels)


# ---- NaN and Inf, when asked for -------------------------------------------------------------

@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_is_refused_when_checking(check_finite, bad):
    x = _x(1, 3, 4, 4)
    x[0, 1, 2, 3] = bad
    with pytest.raises(ValueError, match="^Sequential: forward: input 0 contains NaN or Inf values$"):
        _model()(x)


def test_non_finite_activation_is_caught_at_the_layer_that_receives_it(check_finite):
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    model[0].bias.data[1] = np.inf
    with pytest.raises(ValueError, match="^Linear '1': forward: input 0 contains NaN or Inf values$"):
        model(_x(1, 2))


def test_non_finite_input_passes_without_the_check():
    x = _x(1, 2)
    x[0, 0] = np.nan
    assert np.isnan(nn.Linear(2, 2)(x)).all()


# ---- state is left alone on error, backward needs a forward -----------------------------------

def test_rejected_batch_leaves_batchnorm_state_unchanged():
    bn = nn.BatchNorm2d(3)
    with pytest.raises(ValueError):
        bn(_x(2, 4, 2, 2))
    assert int(bn.num_batches_tracked) == 0
    np.testing.assert_array_equal(bn.running_mean, 0)
    np.testing.assert_array_equal(bn.running_var, 1)


def test_backward_before_forward():
    model = _model()
    with pytest.raises(RuntimeError, match=r"^Linear 'fc': backward called without a forward"):
        model.backward(np.ones((1, 10), np.float32))
    with pytest.raises(RuntimeError, match=r"^Conv2d: backward called without a forward"):
        nn.Conv2d(1, 1, 1).backward(np.ones((1, 1, 1, 1), np.float32))


# ---- load_state_dict --------------------------------------------------------------------------

def test_load_state_dict_missing_key_names_it_and_its_shape():
    model = _model()
    sd = {k: np.array(v) for k, v in model.state_dict().items()}
    del sd["features.1.running_var"]
    with pytest.raises(ValueError, match=r"missing key 'features\.1\.running_var' \(expected shape \(4,\)\)"):
        model.load_state_dict(sd)


def test_load_state_dict_wrong_shape_names_the_key_and_changes_nothing():
    model = _model()
    before = model.fc.weight.data.copy()
    sd = {k: np.zeros_like(v) for k, v in model.state_dict().items()}
    sd["features.3.weight"] = np.zeros((8, 4, 1, 1))
    with pytest.raises(ValueError, match=r"size mismatch for 'features\.3\.weight': expected shape \(8, 4, 3, 3\), got \(8, 4, 1, 1\)"):
        model.load_state_dict(sd)
    np.testing.assert_array_equal(model.fc.weight.data, before)


def test_load_state_dict_unexpected_key():
    with pytest.raises(ValueError, match=r"Linear\.load_state_dict: .*unexpected key 'fc\.weight'"):
        nn.Linear(2, 2).load_state_dict({"weight": np.zeros((2, 2)), "bias": np.zeros(2),
                                         "fc.weight": np.zeros((2, 2))})


# ---- bad constructor arguments ----------------------------------------------------------------

@pytest.mark.parametrize("make, error, message", [
    (lambda: nn.Conv2d(1, 1, 0), ValueError, r"Conv2d: kernel_size, stride and dilation must be >= 1"),
    (lambda: nn.Conv2d(1, 1, 3, stride=(1, 2, 3)), TypeError, r"Conv2d: stride must be an int or a pair of ints"),
    (lambda: nn.Dropout(1.0), ValueError, r"Dropout: p must be in \[0, 1\), got 1.0"),
    (lambda: nn.AdaptiveAvgPool2d(0), ValueError, r"AdaptiveAvgPool2d: output_size must be a positive int"),
    (lambda: nn.AdaptiveMaxPool2d((2, 2, 2)), ValueError, r"AdaptiveMaxPool2d: output_size must be"),
    (lambda: nn.Conv2d(4, 6, 3, groups=4), ValueError, r"Conv2d: in_channels \(4\) and out_channels \(6\) must be divisible by groups \(4\)"),
    (lambda: nn.Conv2d(4, 4, 3, stride=2, padding="same"), ValueError, r"Conv2d: padding='same' is not supported for strided"),
    (lambda: nn.CrossEntropyLoss(reduction="avg"), ValueError, r"CrossEntropyLoss: reduction must be"),
])
def test_bad_constructor_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_bad_pool_arguments_name_the_layer():
    with pytest.raises(ValueError, match=r"^MaxPool2d: maxpool2d: padding \(2, 2\) must be at most half the kernel"):
        nn.MaxPool2d(3, 1, 2)(_x(1, 1, 6, 6))
