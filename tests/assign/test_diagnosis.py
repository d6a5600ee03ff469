"""Bug signatures: each is recognised, and none is named without reason."""
import numpy as np
import pytest

from tinyresnet.assign.diagnosis import SIGNATURES, compare, diagnose_error, locate_in_network


@pytest.fixture
def e(rng):
    return rng.standard_normal((4, 3, 5, 5))


def test_agreement_is_no_finding(e):
    assert compare("dx", e + 1e-12, e, 1e-7) is None


@pytest.mark.parametrize("factor, tag, phrase", [
    (-1.0, "ratio:-1", "opposite sign"),
    (2.0, "ratio:2", "a factor 2 too many"),
    (0.5, "ratio:1/2", "a missing factor 2"),
    (4.0, "ratio:N", "the batch size"),
    (0.25, "ratio:1/N", "the batch size"),
    (100.0, "ratio:M", "values per channel"),
    (-0.25, "ratio:-1/N", "the sign is flipped as well"),
    (3.7, "ratio:3.7", "constant scale factor"),
])
def test_a_constant_ratio_is_named(e, factor, tag, phrase):
    finding = compare("dx", factor * e, e, 1e-7, hints={"N": 4, "M": 100})
    assert finding.signature == tag
    assert phrase in finding.explanation


def test_the_report_names_the_error_and_the_worst_element(e):
    v = e.copy()
    v[1, 2, 3, 4] += 10
    finding = compare("dx", v, e, 1e-7)
    assert "relative error" in finding.summary and "dx[1, 2, 3, 4]" in finding.summary
    assert finding.signature is None and "1 of 300 elements differ" in finding.explanation


def test_a_ratio_that_is_not_constant_names_no_signature(e, rng):
    finding = compare("dx", e * (2 + 0.1 * rng.standard_normal(e.shape)), e, 1e-7, hints={"N": 4})
    assert finding.signature is None


def test_a_transpose_is_recognised_by_shape_and_by_value(rng):
    a = rng.standard_normal((3, 5))
    assert compare("dw", a.T, a, 1e-7).signature == "transpose"
    square = rng.standard_normal((4, 4))
    assert compare("dw", square.T, square, 1e-7).signature == "transpose"
    w = rng.standard_normal((4, 3, 3, 3))
    assert compare("dw", w.transpose(1, 0, 2, 3), w, 1e-7).signature == "transpose"


def test_a_known_wrong_answer_is_named(e, rng):
    wrong = rng.standard_normal(e.shape)
    finding = compare("dx", wrong, e, 1e-7, alternatives={"kernel_not_flipped": wrong})
    assert finding.signature == "kernel_not_flipped"
    assert finding.explanation == SIGNATURES["kernel_not_flipped"]


def test_errors_confined_to_a_mask_are_named(e):
    mask = np.zeros(e.shape, dtype=bool)
    mask[0, 0, 0, :3] = True
    v = e.copy()
    v[0, 0, 0, :2] = 0
    assert compare("dx", v, e, 1e-7, masks={"relu_at_zero": mask}).signature == "relu_at_zero"
    v[3, 2, 1, 1] = 7.0  # an error outside the mask: not that bug
    assert compare("dx", v, e, 1e-7, masks={"relu_at_zero": mask}).signature is None


@pytest.mark.parametrize("value, tag", [
    (None, "none"), ("text", "type"), (np.zeros((4, 3, 5, 4)), "shape"),
    (np.zeros((4, 3, 5, 5)), "zero"), (np.full((4, 3, 5, 5), np.nan), "softmax_overflow"),
])
def test_missing_malformed_zero_and_nonfinite_results(e, value, tag):
    assert compare("dx", value, e, 1e-7, nonfinite="softmax_overflow").signature == tag


def test_a_silent_upcast_is_an_error(e):
    f32 = e.astype(np.float32)
    finding = compare("y", f32.astype(np.float64), f32, 1e-4, check_dtype=True)
    assert finding.signature == "dtype" and "float32 in gives float32 out" in finding.explanation


def records(grads_scale=1.0, dx_wrong=None, skip=()):
    """A toy backward walk: fc <- layer1.0 (relu, bn2, conv, downsample.0) <- stem conv1."""
    base = {
        "fc": {"dy": 1.0, "dx": 2.0, "grads": {"weight": 3.0}},
        "layer1.0": {"dy": 2.0, "dx": 4.0, "grads": {}},
        "layer1.0.relu": {"dy": 2.0, "dx": 5.0, "grads": {}},
        "layer1.0.bn2": {"dy": 5.0, "dx": 6.0, "grads": {"weight": 7.0}},
        "layer1.0.downsample.0": {"dy": 5.0, "dx": 8.0, "grads": {"weight": 9.0}},
        "conv1": {"dy": 4.0, "dx": 10.0, "grads": {"weight": 11.0}},
    }
    out = {}
    for name, r in base.items():
        if name in skip:
            continue
        out[name] = {k: (np.array([v]) if k != "grads" else {p: np.array([g]) for p, g in v.items()})
                     for k, v in r.items()}
    for name, factor in (dx_wrong or {}).items():
        out[name]["dx"] = out[name]["dx"] * factor
    return out


ORDER = ["fc", "layer1.0", "layer1.0.relu", "layer1.0.bn2", "layer1.0.downsample.0", "conv1"]
TYPES = {"fc": "Linear", "layer1.0": "BasicBlock", "layer1.0.bn2": "BatchNorm2d",
         "layer1.0.downsample.0": "Conv2d", "layer1.0.relu": "ReLU", "conv1": "Conv2d"}


def test_the_network_walk_names_nothing_when_all_agree():
    assert locate_in_network(records(), records(), ORDER, ["layer1.0"], TYPES, 1e-7) == []


def test_the_network_walk_names_the_first_wrong_module_per_path():
    # bn2 is wrong, so everything the walk reaches after it receives a wrong gradient
    mine = records(dx_wrong={"layer1.0.bn2": 3.0, "layer1.0": 2.0})
    mine["layer1.0.downsample.0"]["dy"] = mine["layer1.0.downsample.0"]["dy"] * 3.0
    mine["layer1.0.downsample.0"]["dx"] = mine["layer1.0.downsample.0"]["dx"] * 3.0
    mine["conv1"]["dy"] = mine["conv1"]["dy"] * 2.0
    mine["conv1"]["dx"] = mine["conv1"]["dx"] * 2.0
    lines = locate_in_network(mine, records(), ORDER, ["layer1.0"], TYPES, 1e-7)
    assert lines[0] == ("the first module to blame walking backward from the loss is "
                        "'layer1.0.bn2' (BatchNorm2d, residual path)")
    assert lines[1].startswith("residual path: first wrong gradient walking backward at "
                               "'layer1.0.bn2' (BatchNorm2d): its incoming gradient is right")
    assert lines[1].endswith("the bug is here")
    assert lines[2].startswith("shortcut path: first wrong gradient walking backward at "
                               "'layer1.0.downsample.0' (Conv2d): it already receives a wrong")
    assert lines[3].startswith("main path: first wrong gradient walking backward at 'conv1'")
    assert len(lines) == 4  # the block itself is not named: a module inside it is to blame


def test_a_block_whose_modules_are_right_is_blamed_for_its_sum():
    lines = locate_in_network(records(dx_wrong={"layer1.0": 0.5}), records(), ORDER,
                              ["layer1.0"], TYPES, 1e-7)
    assert lines[1] == (
        "shortcut path: first wrong gradient walking backward at 'layer1.0' (BasicBlock): its "
        "incoming gradient is right but what it returns is not (relative error dx 5.0e-01): the "
        "bug is here; every module inside it is right, so the sum of its residual-branch and "
        "shortcut gradients is not")


def test_a_module_the_walk_skips_is_named():
    lines = locate_in_network(records(skip=("conv1",)), records(), ORDER, ["layer1.0"], TYPES, 1e-7)
    assert lines == ["the first module to blame walking backward from the loss is 'conv1' "
                     "(Conv2d, main path)",
                     "main path: first wrong gradient walking backward at 'conv1' (Conv2d): its "
                     "backward was never called: the walk back skips it"]


def test_a_ratio_with_two_readings_gives_both(e):
    finding = compare("dw", 0.5 * e, e, 1e-7, hints={"N": 2})
    assert finding.signature == "ratio:1/N"
    assert "ratio 1/N = 1/2" in finding.explanation
    assert "the batch size" in finding.explanation and "a missing factor 2" in finding.explanation


def test_every_signature_names_the_line_of_math_it_breaks():
    for sig, text in SIGNATURES.items():
        assert "=" in text, f"{sig}: no formula in {text!r}"


def test_a_known_wrong_answer_of_another_shape_is_named(rng):
    """The padded input's gradient (padding not cropped) has another shape than dx."""
    expected = rng.standard_normal((2, 3, 5, 5))
    padded = rng.standard_normal((2, 3, 7, 7))
    finding = compare("dx", padded, expected, 1e-7,
                      alternatives={"conv_padding_not_cropped": padded})
    assert finding.signature == "conv_padding_not_cropped"
    assert "dx has shape (2, 3, 7, 7), expected (2, 3, 5, 5)" in finding.summary
    other = compare("dx", padded + 1, expected, 1e-7,
                    alternatives={"conv_padding_not_cropped": padded})
    assert other.signature == "shape"


def test_an_exception_of_a_known_bug_is_diagnosed():
    from tinyresnet import functional as F

    x = np.zeros((2, 3, 7, 7))
    with pytest.raises(ValueError) as info:  # a stride-2 forward's columns, folded with stride 1
        F.col2im(np.zeros((27, 2 * 4 * 4)), x.shape, (3, 3), 1, 1)
    finding = diagnose_error(info.value)
    assert finding.signature == "conv_col2im_geometry"
    assert "col2im: expected cols of shape" in finding.summary
    assert "stride was left out" in finding.explanation
    with pytest.raises(ValueError) as info:
        np.ones((4, 3)) @ np.ones((4, 3))
    assert diagnose_error(info.value).signature == "matmul_shape"
    assert diagnose_error(ValueError("something else")) is None


def test_a_diagnosed_exception_is_a_failure_not_an_error():
    """The harness turns a known bug's exception into a diagnosed failure (with the student's
    line), and leaves any other exception an error."""
    from tinyresnet.assign.harness import PartTest, run_case

    def col2im_stride_one(t):
        raise ValueError("col2im: expected cols of shape (27, 98) for x_shape (2, 3, 7, 7)")

    def other(t):
        raise ValueError("a bug of its own")

    for fn, status, sig in ((col2im_stride_one, "fail", "conv_col2im_geometry"),
                            (other, "error", None)):
        result = run_case(PartTest("conv_backward", fn.__name__, fn, [{}]), 0, "check", {}, 0,
                          {}, {})
        assert (result.status, result.signature) == (status, sig)
    assert "diagnosis: col2im refused your columns" in run_case(
        PartTest("conv_backward", "c", col2im_stride_one, [{}]), 0, "check", {}, 0, {}, {}).message


def test_a_note_is_kept_on_a_passing_case():
    from tinyresnet.assign.harness import PartTest, run_case

    def trains(t):
        t.note("trained on the digits")

    result = run_case(PartTest("train", "trains", trains, [{}]), 0, "check", {}, 0, {}, {})
    assert result.status == "pass" and result.message == "trained on the digits"
