"""Every gradient-flow picture of docs/gradient-flow.md, from tinyresnet.viz, in a few minutes.

    python3 examples/gradient_flow.py                 # writes docs/images/gradient-flow/*.png
    python3 examples/gradient_flow.py --out /tmp/gf   # somewhere else

At initialisation the nets are the CIFAR ResNets and their plain twins on a batch of 32 random
16x16 images; "trained" means 3 epochs on the built-in 8x8 digits (SGD, momentum 0.9, cosine
decay), ResNet-20 and plain-20 with the same seed.  The figures' numbers go to ``numbers.json``.
"""
import argparse
import json
from pathlib import Path

import numpy as np

import tinyresnet as tr
from tinyresnet import models, viz
from tinyresnet.data import load_digits


def at_init(depth, skip, seed=0):
    tr.manual_seed(seed)
    return models.cifar_resnet(depth, skip=skip)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images/gradient-flow"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    numbers = {}

    def save(fig, name):
        fig.savefig(args.out / f"{name}.png", dpi=100)

    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 3, 16, 16)).astype(np.float32)
    y = rng.integers(0, 10, 32)

    # 1. Gradient profile at init, BN in training mode.
    panels = {}
    for depth in (20, 56):
        panels[f"depth {depth}"] = {
            label: viz.gradient_profile(at_init(depth, skip), x, y)
            for label, skip in ((f"plain-{depth}", False), (f"ResNet-{depth}", True))
        }
    numbers["log10_first_over_last_conv"] = {
        label: p.first_last_ratio() for panel in panels.values() for label, p in panel.items()
    }
    save(viz.plot_gradient_profile(panels), "profile")

    # 2. Forward signal at init.
    signals = {f"{k}-56": viz.forward_signal(at_init(56, skip), x)
               for k, skip in (("plain", False), ("ResNet", True))}
    numbers["block_std_at_init"] = {k: s.block_std.round(3).tolist() for k, s in signals.items()}
    save(viz.plot_forward_signal(signals), "signal_init")

    # 3. Shattered gradients.
    shattering = [viz.shattering([1, 8, 24, 50], residual=r, seeds=range(4)) for r in (False, True)]
    numbers["lag1_autocorrelation"] = {s.label: dict(zip(s.depths.tolist(), s.lag1.round(3).tolist()))
                                       for s in shattering}
    save(viz.plot_shattering(shattering), "shattering")

    # 4. Path lengths of CIFAR ResNet-110 (54 blocks), the setting of Veit et al.'s Fig. 6.
    save(viz.plot_paths(viz.path_length_distribution(54)), "path_lengths_54")

    # Trained on the digits.
    train, test = load_digits()
    resnet, plain = viz.train_on_digits(skip=True), viz.train_on_digits(skip=False)
    xt, yt = test.images, test.labels
    numbers["test_accuracy"] = {"ResNet-20": viz.evaluate(resnet, xt, yt)[1],
                                "plain-20": viz.evaluate(plain, xt, yt)[1]}

    # 5. Identity vs residual split, at init and trained (BN in eval mode after training).
    tr.manual_seed(0)
    fresh = models.cifar_resnet(20, in_channels=1)
    splits = {"ResNet-20 at init": viz.gradient_split(fresh, xt[:64], yt[:64]),
              "ResNet-20 trained": viz.gradient_split(resnet, xt[:64], yt[:64])}
    numbers["shortcut_over_branch"] = {k: s.ratio.round(2).tolist() for k, s in splits.items()}
    numbers["cosine_shortcut_branch"] = {k: s.cosine.round(3).tolist() for k, s in splits.items()}
    save(viz.plot_gradient_split(splits), "split")

    # 6. Forward signal after training (the paper's Fig. 7: 3x3 responses after BN).
    trained_signals = {"plain-20 trained": viz.forward_signal(plain, xt),
                       "ResNet-20 trained": viz.forward_signal(resnet, xt)}
    numbers["conv_std_trained"] = {k: s.conv_std.round(3).tolist() for k, s in trained_signals.items()}
    save(viz.plot_forward_signal(trained_signals), "signal_trained")

    # 7. Gradient per path length on the trained ResNet-20 (9 blocks).
    tr.manual_seed(0)
    fresh = models.cifar_resnet(20, in_channels=1)  # BN in training mode: no statistics yet
    paths = {"ResNet-20 at init": viz.path_gradient_magnitude(fresh, xt[:64], yt[:64], samples=8),
             "ResNet-20 trained": viz.path_gradient_magnitude(resnet, xt[:64], yt[:64], samples=8)}
    numbers["path_gradient_mean"] = {k: g.mean.tolist() for k, g in paths.items()}
    save(viz.plot_paths(viz.path_length_distribution(9), paths), "paths")

    # 8. Lesion study.
    lesions = {"ResNet-20": viz.lesion_study(resnet, xt, yt),
               "plain-20": viz.lesion_study(plain, xt, yt)}
    numbers["lesion_accuracy"] = {k: {"intact": v.baseline_accuracy,
                                      "deleted": np.round(v.accuracy, 3).tolist()}
                                  for k, v in lesions.items()}
    save(viz.plot_lesion(lesions), "lesion")

    # 9. Loss landscape around the trained weights.
    alphas = np.linspace(-1, 1, 21)
    slices = {"ResNet-20": viz.loss_slice_1d(resnet, xt, yt, alphas),
              "plain-20": viz.loss_slice_1d(plain, xt, yt, alphas)}
    save(viz.plot_loss_slice_1d(slices), "landscape_1d")
    grid = np.linspace(-1, 1, 11)
    planes = {"ResNet-20": viz.loss_slice_2d(resnet, xt[:200], yt[:200], grid),
              "plain-20": viz.loss_slice_2d(plain, xt[:200], yt[:200], grid)}
    save(viz.plot_loss_slice_2d(planes), "landscape_2d")
    numbers["landscape_1d_loss"] = {k: s.loss.round(4).tolist() for k, s in slices.items()}

    (args.out / "numbers.json").write_text(json.dumps(numbers, indent=1))
    return numbers


if __name__ == "__main__":
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):  # small matrices: one thread is fastest
        main()
