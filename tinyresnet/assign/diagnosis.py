r"""Diagnosis of a wrong result: how far off it is, where, and which known bug it looks like.

A test compares a student's tensor with the reference's.  When they differ, ``compare`` reports
the relative error (norm-wise, as ``tinyresnet.gradcheck.rel_error`` measures it), the worst
element and both values there, and the first *bug signature* that fits:

* a constant ratio yours / expected, read in terms the test knows: -1 (opposite sign), 2 or 1/2
  (a factor 2), N or 1/N (a sum where a mean belongs, or the reverse), M = N*H*W for batch norm;
* a transpose (or a spatial flip) of the expected tensor;
* a known wrong answer the test computed from the reference with one bug put in, such as the
  convolution with the kernel not flipped, batch norm with the running statistics in training,
  or a block's dx made of the residual branch alone (shortcut gradient not added);
* errors confined to a known set of elements, such as ReLU inputs exactly 0 or tied maxima;
* NaN or Inf, zero everywhere, a wrong shape (or a known wrong answer of another shape, such as
  the padded input's gradient) or a silently changed dtype;
* an exception a known bug raises (``diagnose_error``): col2im given another geometry's columns
  (the stride left out of the backward), a matrix product of mismatched shapes.

Every message names the bug and the line of the math it breaks.

The ratio is the least-squares fit  c = <yours, expected> / <expected, expected>; it is a signature
only when yours = c * expected holds to 1e-6 relative, so a coincidental mean ratio never names a
bug.  ``locate_in_network`` walks a whole network's module gradients backward and names the first
module whose gradient is wrong, separately on the residual branches and on the shortcuts.

The messages live here, not in the tests, so that feedback never quotes a hidden test's code.
"""
import re
from dataclasses import dataclass

import numpy as np

__all__ = ["SIGNATURES", "ERRORS", "Finding", "compare", "diagnose_error", "locate_in_network"]

SIGNATURES = {
    # wrong answers computed by the tests from the reference, with one bug put in
    "kernel_not_flipped": (
        "your dx equals the full convolution of dy with the kernel NOT rotated by 180 degrees "
        "(or rotated twice): the gradient of a cross-correlation w.r.t. its input correlates dy "
        "with the flipped kernel, dx = conv_full(dy, rot180(w)) (col2im(W^T dY) does this for "
        "you)"),
    "conv_forward_kernel_flipped": (
        "your output is a true convolution, with the kernel rotated by 180 degrees: a CNN layer "
        "is a cross-correlation, y[n, f, i, j] = b[f] + sum_{c,a,b} w[f, c, a, b] "
        "x[n, c, i*s + a, j*s + b], no flip"),
    "conv_forward_padding_ignored": (
        "your output has the shape of the convolution without padding: pad x with p zeros on "
        "each side first, Ho = (H + 2p - kh) // s + 1"),
    "conv_forward_stride_ignored": (
        "your output has the shape of the convolution with stride 1: windows start every s "
        "pixels, x[n, c, i*s + a, j*s + b], Ho = (H + 2p - kh) // s + 1"),
    "conv_col2im_geometry": (
        "col2im refused your columns (ValueError: col2im: expected cols of shape ...): the "
        "backward must fold W^T dY back with the forward's geometry, dx = col2im(W^T dY; "
        "kernel, stride s, padding p, dilation); most often the stride was left out (col2im "
        "called with stride 1, which expects H*W columns per image instead of Ho*Wo)"),
    "conv_padding_not_cropped": (
        "your dx has the shape of the padded input (N, C, H + 2p, W + 2p) and equals the "
        "gradient with respect to it: cut the padding's gradient off after col2im, "
        "dx = dx_pad[:, :, p:p + H, p:p + W] (the zeros added by padding are not inputs)"),
    "conv_db_wrong_axes": (
        "your db sums dy over the wrong axes: the bias of filter f is added to every output "
        "pixel of every image, so db[f] = sum_{n,i,j} dy[n, f, i, j] (axes 0, 2, 3; one value "
        "per filter)"),
    "bias_ignored": "your output is the layer's output without the bias: add b (for a "
                    "convolution, b[f] to every output pixel of filter f: y = W x + b)",
    "maxpool_zero_padding": (
        "your output is max pooling over a zero-padded input: pad with -inf, so that the padding "
        "never wins (it matters where a window at the border holds only negative values): "
        "y[n, c, i, j] = max over the window of x_pad, x_pad = -inf outside x"),
    "maxpool_spread": (
        "your dx spreads each window's gradient evenly over the window, which is average "
        "pooling's rule: max pooling routes the whole gradient to the window's maximum, "
        "dx[argmax of window (i, j)] += dy[i, j]"),
    "maxpool_window_offset": (
        "your dx sends the gradient of output (i, j) into the window starting at (i, j): a "
        "window starts at (i*stride, j*stride), so dx[n, c, i*s + a*, j*s + b*] += dy[n, c, i, j] "
        "with (a*, b*) the maximum's place inside the window"),
    "maxpool_overwrite": (
        "where windows overlap, your dx keeps only one window's gradient: an element that is the "
        "maximum of several windows receives the SUM of their gradients (dx[...] += dy, not =)"),
    "maxpool_all_ties": (
        "your dx sends the gradient to every maximum of a window with ties: PyTorch (and the "
        "reference) send it to the first maximum in scan order only, dx[first argmax] += dy"),
    "relu_mask_from_dy": "your dx masks with dy > 0: the mask must come from the forward's input, "
                         "dx = dy * [x > 0]",
    "relu_mask_from_output": (
        "your dx equals dy everywhere: the mask lets every value through, as a mask taken from "
        "the output with y >= 0 does (y = max(x, 0) is never negative); dx = dy * [x > 0]"),
    "softmax_no_onehot": "your dlogits equal softmax / N: the one-hot targets were not subtracted "
                         "(dL/dz = (p - onehot(y)) / N)",
    "bn_running_stats_in_training": (
        "your output equals batch norm computed with the running statistics: in training mode "
        "batch norm normalises with the batch's own mean and variance (the running ones are "
        "only updated, and used in eval mode): x_hat = (x - mean_batch) / sqrt(var_batch + eps)"),
    "bn_batch_stats_in_eval": (
        "your output equals batch norm computed with the batch statistics: in eval mode batch "
        "norm uses running_mean and running_var, x_hat = (x - running_mean) / "
        "sqrt(running_var + eps)"),
    "bn_stats_over_batch_only": (
        "your output normalises each pixel with statistics over the batch axis alone (as "
        "BatchNorm1d would): BatchNorm2d takes one mean and variance per channel over (N, H, W), "
        "mu_c = sum_{n,h,w} x[n, c, h, w] / M, M = N*H*W"),
    "bn_divides_by_N": (
        "your result divides the per-channel sums by N, the batch size: the mean and variance "
        "of a channel (and the means in the backward, mean(dy) = dbeta / M, mean(dy x_hat) = "
        "dgamma / M) divide by M = N*H*W, the values per channel"),
    "bn_eps_outside_sqrt": (
        "your output divides by sqrt(var) + eps: eps belongs inside the square root, "
        "x_hat = (x - mu) / sqrt(var + eps)"),
    "bn_running_not_updated": (
        "your running statistics are not updated in training: each training step moves them, "
        "r = (1 - momentum) r + momentum * (the batch's statistic)"),
    "bn_dgamma_uses_x": (
        "your dgamma sums dy * x: gamma multiplies the NORMALISED input, y = gamma x_hat + beta, "
        "so dgamma = sum_{n,h,w} dy * x_hat"),
    "bn_biased_running_var": (
        "your running_var follows the biased batch variance: PyTorch stores the unbiased one, "
        "var * M / (M - 1), M = N*H*W"),
    "bn_momentum_swapped": (
        "your running statistics weight the old value by momentum: PyTorch's momentum weights "
        "the NEW batch statistic, r = (1 - momentum) r + momentum * batch"),
    "bn_backward_constant_stats": (
        "your dx equals gamma * dy / sqrt(var + eps): it treats the batch mean and variance as "
        "constants, but they depend on every x (two more terms): dx = (gamma / s) (dy - mean(dy) "
        "- x_hat mean(dy x_hat))"),
    "bn_backward_no_variance_term": (
        "your dx misses the x-hat term, the gradient that flows through the batch variance: "
        "dx = (gamma / s) (dy - mean(dy) - x_hat mean(dy x_hat)); subtract "
        "x_hat * mean(dy * x_hat) as well as mean(dy)"),
    "bn_backward_no_mean_term": (
        "your dx misses the mean term, the gradient that flows through the batch mean: "
        "dx = (gamma / s) (dy - mean(dy) - x_hat mean(dy x_hat)) without '- mean(dy)' (in the "
        "compact code, dx -= dbeta / M is missing)"),
    "bn_dgamma_dbeta_swapped": "your dgamma and dbeta are swapped: dbeta = sum(dy), "
                               "dgamma = sum(dy * x_hat)",
    "shortcut_grad_missing": (
        "your block's dx equals the residual branch's part alone: the shortcut's gradient is not "
        "added (dx = dF/dx^T d + ds/dx^T d: the input fed both paths)"),
    "branch_grad_missing": (
        "your block's dx equals the shortcut's part alone: the residual branch's gradient is not "
        "added (dx = dF/dx^T d + ds/dx^T d)"),
    "block_relu_backward_skipped": (
        "your block's gradients are what they would be without back-propagating through the "
        "ReLU after the sum: apply relu.backward to dy first, d = dy * [F(x) + s(x) > 0]"),
    "block_no_shortcut": (
        "your block's output has no shortcut: out = relu(F(x) + s(x)), the input (or its "
        "projection) is added before the final ReLU"),
    "block_relu_before_sum": (
        "your block applies the ReLU before adding the shortcut: out = relu(F(x) + s(x)), the "
        "ReLU comes after the sum"),
    "option_a_channel_offset": (
        "your option A shortcut puts the input's channels first: they sit after "
        "(out_channels - in_channels) // 2 zero channels, the rest of the zeros after them: "
        "y[:, p:p + C] = x[:, :, ::s, ::s] with p = (out_channels - in_channels) // 2"),
    "option_a_no_subsample": (
        "your option A shortcut keeps every pixel: it subsamples like the strided convolution "
        "beside it, y[:, p:p + C] = x[:, :, ::s, ::s]"),
    # errors confined to a set of elements
    "relu_at_zero": (
        "wrong only where the input is exactly 0: ReLU's gradient at 0 is taken as 0 "
        "(PyTorch's convention), so use x > 0, not x >= 0"),
    "pool_ties_only": (
        "wrong only in windows whose maximum is tied: send the gradient to the first maximum "
        "in scan order, as PyTorch does: dx[first argmax] += dy"),
    # non-finite results
    "softmax_overflow": (
        "NaN or Inf for large logits: exp overflows; subtract each row's maximum before the "
        "exponential (log-sum-exp), which leaves softmax unchanged: log softmax(z)_k = "
        "z_k - m - log sum_j exp(z_j - m), m = max_j z_j"),
    # optimizers: torch.optim.SGD (dampening 0, no Nesterov) and torch.optim.Adam
    "sgd_no_momentum": (
        "your SGD ignores the momentum buffer: b_1 = g_1, b_t = mu b_(t-1) + g_t, "
        "theta <- theta - lr b_t (your steps are theta <- theta - lr g_t)"),
    "sgd_dampened": (
        "your momentum buffer is an average, b = mu b + (1 - mu) g: with torch's dampening 0 "
        "the whole gradient is added, b_t = mu b_(t-1) + g_t, and b_1 = g_1"),
    "sgd_weight_decay_ignored": (
        "your SGD's weight decay is missing: g_t = g_t + lambda theta_(t-1), before the "
        "momentum buffer"),
    "sgd_weight_decay_after_momentum": (
        "your SGD adds the weight decay to the step, after the buffer: torch adds it to the "
        "gradient before the momentum buffer, g_t <- g_t + lambda theta_(t-1); b_t = mu b_(t-1) "
        "+ g_t"),
    "adam_no_bias_correction": (
        "your Adam has no bias correction: m_hat = m_t / (1 - beta1^t) and v_hat = v_t / "
        "(1 - beta2^t) undo the moments' start at zero"),
    "adam_step_not_counted": (
        "your Adam's bias correction uses t = 1 at every step: the step count t grows by one "
        "per step (state['step']), m_hat = m_t / (1 - beta1^t)"),
    "adam_eps_inside_sqrt": (
        "your Adam puts eps inside the square root: theta_t = theta_(t-1) - lr m_hat / "
        "(sqrt(v_hat) + eps), eps added after the square root"),
    "adam_decoupled_weight_decay": (
        "your Adam decays the weights directly, theta = theta (1 - lr lambda) (AdamW's "
        "decoupled rule): torch.optim.Adam adds the L2 term to the gradient, g_t = g_t + "
        "lambda theta_(t-1)"),
    # exceptions a known bug raises (see ERRORS)
    "matmul_shape": (
        "a matrix product of mismatched shapes (ValueError from @ or matmul): one operand needs "
        "a transpose; for y = x W^T + b the gradients are dx = dy W (N x in) and "
        "dW = dy^T x (out x in)"),
}

# (pattern of an exception's message, signature): bugs recognised by the error they raise
ERRORS = [
    (re.compile(r"col2im: expected cols of shape"), "conv_col2im_geometry"),
    (re.compile(r"matmul: Input operand \d+ has a mismatch in its core dimension"
                r"|shapes \(.*\) and \(.*\) not aligned"), "matmul_shape"),
]

_FACTOR_NAMES = {
    "N": "N = {v:g}, the batch size: a sum over the batch where the loss takes the mean "
         "(or the reverse)",
    "M": "M = N*H*W = {v:g}, the values per channel: a sum over (N, H, W) where the mean belongs "
         "(or the reverse)",
    "upstream": "{v:g} is the incoming gradient: it was not multiplied in (or was twice)",
}


@dataclass
class Finding:
    """What is wrong with one tensor.  ``signature`` is an id of SIGNATURES, or a short tag
    (``ratio:-1``, ``ratio:N``, ``transpose``, ``shape``, ``nonfinite``, ``zero``, ``dtype``)."""

    name: str
    summary: str
    signature: str = None
    explanation: str = ""
    rel_error: float = float("nan")

    def __str__(self):
        text = self.summary
        if self.explanation:
            text += f"\n  diagnosis: {self.explanation}"
        return text


def _fmt_index(index):
    return "[" + ", ".join(str(i) for i in index) + "]"


def _close(a, b, tol):
    """Norm-wise relative closeness of two same-shaped float arrays."""
    scale = max(float(np.linalg.norm(a)), float(np.linalg.norm(b)))
    if scale == 0:
        return True
    return float(np.linalg.norm(a - b)) / scale <= tol


def _ratio_signature(name, value, expected, hints):
    """(tag, explanation) when value = c * expected for a constant c, else None.

    Every reading that fits is given (with a batch of 2, a ratio 1/2 is both a missing factor 2
    and a mean over the batch); the tag names the test's own quantity (N, M, ...) first."""
    ee = float((expected * expected).sum())
    if ee == 0:
        return None
    c = float((value * expected).sum()) / ee
    if not np.isfinite(c) or abs(c) < 1e-12:
        return None
    if float(np.linalg.norm(value - c * expected)) > 1e-6 * float(np.linalg.norm(value)):
        return None
    sign, magnitude = ("-", -c) if c < 0 else ("", c)
    if abs(magnitude - 1) <= 1e-6:
        if not sign:
            return None
        return "ratio:-1", (f"your {name} is the expected one with the opposite sign (ratio -1): "
                            f"a sign error")
    named = [(key, float(hints[key])) for key in ("N", "M", "upstream") if hints.get(key)]
    named.append(("2", 2.0))
    readings = []
    for key, v in named:
        for power, label in ((1, key), (-1, f"1/{key}")):
            if abs(magnitude - v**power) <= 1e-6 * v**power:
                if key == "2":
                    what = ("a factor 2 too many (a gradient added twice, or a stray 2)"
                            if power == 1 else "a missing factor 2 (or a stray 1/2)")
                else:
                    what = _FACTOR_NAMES[key].format(v=v)
                readings.append((f"{sign}{label}", what))
    if not readings:
        return f"ratio:{c:.4g}", (f"your {name} is exactly {c:.6g} x the expected everywhere: "
                                  f"a constant scale factor is missing or extra")
    labels = " = ".join(label for label, _ in readings)
    text = (f"your {name} is exactly {c:.6g} x the expected (ratio {labels}): "
            + "; or ".join(what for _, what in readings))
    if sign:
        text += "; the sign is flipped as well"
    return f"ratio:{readings[0][0]}", text


def _shape_finding(name, value, expected):
    summary = (f"{name} has shape {tuple(value.shape)}, expected {tuple(expected.shape)}")
    if value.ndim == 2 and value.shape == expected.shape[::-1]:
        if _close(value.T, expected, 1e-6):
            return Finding(name, summary, "transpose",
                           f"your {name} is the transpose of the expected one: a transpose is "
                           f"missing (or one too many)")
        return Finding(name, summary, "shape", "the shape is the transpose of the expected one")
    if value.ndim == 4 and value.shape == (expected.shape[1], expected.shape[0]) + expected.shape[2:]:
        if _close(value.transpose(1, 0, 2, 3), expected, 1e-6):
            return Finding(name, summary, "transpose",
                           f"your {name} has its first two axes swapped (C, F instead of F, C): "
                           f"a transpose is missing")
    if value.size == expected.size:
        return Finding(name, summary, "shape",
                       "the number of elements is right: check the order of a reshape/transpose")
    return Finding(name, summary, "shape", "")


def compare(name, value, expected, tol, hints=None, alternatives=None, masks=None,
            nonfinite=None, check_dtype=False):
    """Compare ``value`` with ``expected``; None when they agree, else a Finding.

    Parameters
    ----------
    name : what the tensor is called in messages ("dx", "running_var")
    value, expected : arrays (value may be anything a student returned)
    tol : allowed norm-wise relative error
    hints : {"N": batch size, "M": values per channel, "upstream": the incoming gradient's
        scale} to name ratios
    alternatives : {signature id: array}, known wrong answers computed from the reference
    masks : {signature id: bool array}, element sets whose exclusive errors are a signature
    nonfinite : signature id to name when value holds NaN/Inf but expected does not
    check_dtype : a dtype different from expected's is itself an error
    """
    hints, alternatives, masks = hints or {}, alternatives or {}, masks or {}
    expected = np.asarray(expected)
    if value is None:
        return Finding(name, f"{name} is None", "none",
                       f"nothing was returned for {name}: check the return statement")
    try:
        value_arr = np.asarray(value)
    except Exception:  # a ragged list, an object that refuses conversion
        value_arr = np.asarray(None)
    if value_arr.dtype == object or (value_arr.dtype.kind not in "biuf" and expected.dtype.kind in "biuf"):
        return Finding(name, f"{name} is a {type(value).__name__}, expected an array of shape "
                             f"{tuple(expected.shape)}", "type", "")
    if check_dtype and value_arr.dtype != expected.dtype:
        return Finding(name, f"{name} has dtype {value_arr.dtype}, expected {expected.dtype}", "dtype",
                       f"{expected.dtype} in gives {expected.dtype} out: a float64 constant or "
                       f"an array made without dtype= upcasts silently")
    if value_arr.shape != expected.shape:
        finding = _shape_finding(name, value_arr, expected)
        for sig, alt in alternatives.items():
            alt = np.asarray(alt)
            if alt.shape == value_arr.shape and _close(value_arr.astype(np.float64),
                                                       alt.astype(np.float64), max(tol, 1e-9)):
                finding.signature, finding.explanation = sig, SIGNATURES[sig]
        return finding
    v = value_arr.astype(np.float64)
    e = expected.astype(np.float64)
    if not np.all(np.isfinite(v)) and np.all(np.isfinite(e)):
        bad = int((~np.isfinite(v)).sum())
        return Finding(name, f"{name} holds {bad} NaN/Inf values (of {v.size})",
                       nonfinite or "nonfinite", SIGNATURES.get(nonfinite, ""))
    scale = max(float(np.linalg.norm(v)), float(np.linalg.norm(e)))
    error = float(np.linalg.norm(v - e)) / scale if scale > 0 else 0.0
    if error <= tol:
        return None
    diff = np.abs(v - e)
    worst = np.unravel_index(int(np.argmax(diff)), diff.shape) if diff.ndim else ()
    summary = (f"{name} is wrong: relative error {error:.2e} (allowed {tol:.0e}); worst element "
               f"{name}{_fmt_index(worst)}: yours {float(v[worst]):.6g}, expected {float(e[worst]):.6g}")
    finding = Finding(name, summary, rel_error=error)
    if float(np.abs(e).max(initial=0.0)) > 0 and not v.any():
        finding.signature, finding.explanation = "zero", (
            f"your {name} is zero everywhere: nothing was propagated (is the result computed, "
            f"assigned and returned?)")
        return finding
    for sig, alt in alternatives.items():
        alt = np.asarray(alt, dtype=np.float64)
        if alt.shape == v.shape and not _close(alt, e, 1e-9) and _close(v, alt, max(tol, 1e-9)):
            finding.signature, finding.explanation = sig, SIGNATURES[sig]
            return finding
    ratio = _ratio_signature(name, v, e, hints)
    if ratio is not None:
        finding.signature, finding.explanation = ratio
        return finding
    if v.ndim == 2 and v.shape[0] == v.shape[1] and _close(v.T, e, 1e-6):
        finding.signature = "transpose"
        finding.explanation = f"your {name} is the transpose of the expected one"
        return finding
    if v.ndim >= 2 and _close(v[..., ::-1, ::-1], e, 1e-6):
        finding.signature = "flipped"
        finding.explanation = (f"your {name} is the expected one rotated by 180 degrees in its last "
                               f"two axes: a kernel flip too many (or too few)")
        return finding
    wrong = diff > 1e-6 * float(np.abs(e).max(initial=0.0)) + 1e-12
    for sig, mask in masks.items():
        mask = np.broadcast_to(np.asarray(mask, dtype=bool), wrong.shape)
        if mask.any() and wrong.any() and not (wrong & ~mask).any():
            finding.signature, finding.explanation = sig, SIGNATURES[sig]
            return finding
    fraction = float(wrong.mean()) if wrong.size else 0.0
    finding.explanation = (f"{int(wrong.sum())} of {wrong.size} elements differ ({fraction:.0%}); "
                           f"no known bug signature matches")
    return finding


def diagnose_error(exc):
    """A Finding for an exception that a known bug raises (``ERRORS``), else None.

    The summary keeps the exception's own first line, so the student still sees what was said.
    """
    text = str(exc)
    for pattern, sig in ERRORS:
        if pattern.search(text):
            first = text.strip().splitlines()[0] if text.strip() else ""
            return Finding("error", f"{type(exc).__name__}: {first[:300]}", sig, SIGNATURES[sig])
    return None


def _wrong(mine, ref, tol):
    """Relative error of two gradients, or None when they agree (inf when one is missing)."""
    if mine is None or ref is None:
        return None if mine is None and ref is None else float("inf")
    a, b = np.asarray(mine, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    scale = max(float(np.linalg.norm(a)), float(np.linalg.norm(b)))
    error = float(np.linalg.norm(a - b)) / scale if scale > 0 else 0.0
    return error if error > tol else None


def _path_of(name, blocks):
    if "downsample" in name.split("."):
        return "shortcut path"
    if name in blocks:
        return "shortcut path"  # a block's own sum: where the shortcut's gradient joins
    if any(name.startswith(b + ".") for b in blocks):
        return "residual path"
    return "main path"


def locate_in_network(records, expected, order, blocks, types, tol):
    """Where a whole network's backward goes wrong, walking back from the loss.

    Parameters
    ----------
    records, expected : {module name: {"dy", "dx", "grads": {param: array}}}, the student's and
        the reference's (``dy`` arrives at the module's output, ``dx`` is what it returns)
    order : module names in the order the reference's backward visits them
    blocks : names of the residual blocks; types : {module name: class name}
    tol : allowed relative error

    A module's gradient is wrong when its dx or a parameter's gradient is, or when backward never
    reached it; it is *to blame* when, besides, the gradient it received is right.  A block counts
    only when it is to blame and none of its own modules is (then the sum of its branch and
    shortcut gradients is what is wrong).  Returns lines: the first module to blame, then, for
    each path (main, residual branches, shortcuts), the first module whose gradient is wrong and
    whether the error starts there.  An empty list when every recorded gradient agrees.
    """
    wrong = []  # (name, to blame, what)
    for name in order:
        ref, mine = expected.get(name), records.get(name)
        if ref is None:
            continue
        if mine is None:
            wrong.append((name, True, "its backward was never called: the walk back skips it"))
            continue
        bad = []
        dx_error = _wrong(mine.get("dx"), ref.get("dx"), tol)
        if dx_error is not None:
            bad.append(f"dx {dx_error:.1e}" if np.isfinite(dx_error) else "dx (missing or of the "
                       "wrong shape)")
        for param, g in (ref.get("grads") or {}).items():
            error = _wrong((mine.get("grads") or {}).get(param), g, tol)
            if error is not None:
                bad.append(f"d{param} {error:.1e}" if np.isfinite(error) else f"d{param} "
                           f"(missing or of the wrong shape)")
        if not bad:
            continue
        dy_error = _wrong(mine.get("dy"), ref.get("dy"), tol)
        if dy_error is None:
            wrong.append((name, True, "its incoming gradient is right but what it returns is not "
                                      "(relative error " + ", ".join(bad) + "): the bug is here"))
        else:
            wrong.append((name, False, "it already receives a wrong gradient (relative error "
                                       f"{dy_error:.1e}): the error comes from later layers"))
    blamed = {n for n, here, _ in wrong if here}
    entries = []
    for name, here, what in wrong:
        if name in blocks:
            if not here or any(other.startswith(name + ".") for other in blamed):
                continue  # a block is wrong whenever a module inside it is: name the module
            if "never called" not in what:
                what += ("; every module inside it is right, so the sum of its residual-branch "
                         "and shortcut gradients is not")
        entries.append((name, here, what))
    if not entries:
        return []
    lines = []
    first = next(((n, w) for n, here, w in entries if here), None)
    if first is not None:
        lines.append(f"the first module to blame walking backward from the loss is '{first[0]}' "
                     f"({types.get(first[0], 'module')}, {_path_of(first[0], blocks)})")
    seen = set()
    for name, here, what in entries:
        path = _path_of(name, blocks)
        if path not in seen:
            seen.add(path)
            lines.append(f"{path}: first wrong gradient walking backward at '{name}' "
                         f"({types.get(name, 'module')}): {what}")
    return lines
