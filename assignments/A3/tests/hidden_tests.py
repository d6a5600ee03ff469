"""A3 hidden tests: kept by the instructor, run at grading (students see parameters and
diagnoses only)."""
import numpy as np

from tinyresnet import models, nn
from tinyresnet.assign.diagnosis import locate_in_network
from tinyresnet.assign.harness import Suite
from tinyresnet.gradcheck import check_direction
from tinyresnet.models import BasicBlock, FeatureNetwork, ResidualBlock, ShortcutA

suite = Suite()


def normal(*shape, mean=0.0, std=1.0):
    return lambda rng: mean + std * rng.standard_normal(shape)


class SmallResNet(FeatureNetwork):
    """Stem and three stages (widths 3, 6, 6), built here from blocks."""

    def __init__(self, shortcut="B", in_channels=3, num_classes=4):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 3, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(3)
        self.relu = nn.ReLU()
        self.layer1 = nn.Sequential(BasicBlock(3, 3))
        if shortcut == "A":
            down = ShortcutA(3, 6, 2)
        else:
            down = nn.Sequential(nn.Conv2d(3, 6, 1, stride=2, bias=False), nn.BatchNorm2d(6))
        self.layer2 = nn.Sequential(BasicBlock(3, 6, 2, down), BasicBlock(6, 6))
        self.layer3 = nn.Sequential(BasicBlock(6, 6))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.flatten = nn.Flatten(1)
        self.fc = nn.Linear(6, num_classes)

    def feature_stages(self):
        return [("stem", [self.conv1, self.bn1, self.relu]), ("layer1", [self.layer1]),
                ("layer2", [self.layer2]), ("layer3", [self.layer3])]

    def head(self):
        return [self.avgpool, self.flatten, self.fc]


def randomize(t, net):
    state = {}
    for key, value in net.state_dict().items():
        if value.dtype.kind != "f":
            state[key] = value
        elif key.endswith("running_var"):
            state[key] = t.input(f"state.{key}", lambda rng, s=value.shape: rng.uniform(0.5, 2, s))
        else:
            center = 1.0 if (value.ndim == 1 and key.endswith("weight")) else 0.0
            std = 0.1 if key.endswith("running_mean") else 0.3
            state[key] = t.input(f"state.{key}", normal(*value.shape, mean=center, std=std))
    net.double()
    net.load_state_dict(state)
    return net


def describe_modules(net):
    out = {}
    for name, m in net.named_modules():
        entry = [type(m).__name__]
        for attribute in ("kernel_size", "stride", "padding", "dilation"):
            value = getattr(m, attribute, None)
            if isinstance(value, tuple):
                entry.append(list(value))
            elif isinstance(value, int) and not isinstance(value, bool):
                entry.append(value)
        out[name or "(network)"] = entry
    return out


MAKE_LAYER_CASES = [
    dict(model="resnet34", imagenet=True),
    dict(model="resnet50", dilation="layer3 and layer4", imagenet=True),
    dict(model="cifar_resnet32", skip=False),
    dict(model="cifar_resnet8", in_channels=1, num_classes=4),
    dict(model="cifar_resnet14", shortcut="B"),
]


@suite.test("make_layer", cases=MAKE_LAYER_CASES)
def make_layer_hidden(t, model, imagenet=False, dilation="", skip=True, in_channels=3,
                      num_classes=10, shortcut="A"):
    if imagenet and not t.params.get("imagenet", True):
        t.skip("ImageNet-size networks are off in this configuration")
    if model.startswith("cifar_resnet"):
        net = models.cifar_resnet(int(model[len("cifar_resnet"):]), num_classes=num_classes,
                                  shortcut=shortcut, skip=skip, in_channels=in_channels)
    else:
        kwargs = {"replace_stride_with_dilation": [False, True, True]} if dilation else {}
        net = getattr(models, model)(num_classes=num_classes, **kwargs)
    t.expect_same("modules (class, kernel, stride, padding, dilation)", describe_modules(net))
    t.expect_same("parameter and buffer shapes",
                  {k: list(v.shape) for k, v in net.state_dict().items()})


NETWORK_CASES = [
    dict(N=2, H=7, W=5, shortcut="B"),
    dict(N=2, H=6, W=9, shortcut="A"),
    dict(N=4, H=4, W=4, shortcut="B", in_channels=1),
]


@suite.test("network_forward", cases=NETWORK_CASES)
def network_forward_hidden(t, N, H, W, shortcut, in_channels=3):
    net = randomize(t, SmallResNet(shortcut, in_channels))
    x = t.input("x", normal(N, in_channels, H, W))
    features = net.forward_features(x)
    t.check(list(features) == ["stem", "layer1", "layer2", "layer3"],
            f"forward_features must return every stage's feature in order, got {list(features)}")
    for name in ("stem", "layer1", "layer2", "layer3"):
        t.expect(f"feature {name}", features[name])
    t.expect("logits (training mode)", net(x))
    net.eval()
    t.expect("logits (eval mode)", net(x))


def instrument(net):
    records, order = {}, []
    for name, module in net.named_modules():
        if not name or isinstance(module, nn.Sequential):
            continue

        def recorded(dy, name=name, inner=module.backward):
            order.append(name)
            dx = inner(dy)
            records[name] = {"dy": np.array(dy), "dx": None if dx is None else np.array(dx)}
            return dx

        object.__setattr__(module, "backward", recorded)
    return records, order


def gradients_with_diagnosis(t, net, run_backward):
    records, order = instrument(net)
    net.zero_grad()
    dx = run_backward()
    for name, module in net.named_modules():
        if name in records:
            records[name]["grads"] = {p: (None if v.grad is None else np.array(v.grad))
                                      for p, v in module._parameters.items() if v is not None}
    findings = [t.compare("dx", dx, kind="gradient")]
    findings += [t.compare(f"d{n}", p.grad, kind="gradient") for n, p in net.named_parameters()]
    findings = [f for f in findings if f is not None]
    ref_order = t.reference("order", order)
    blocks = t.reference("blocks", [n for n, m in net.named_modules() if isinstance(m, ResidualBlock)])
    types = t.reference("types", {n: type(m).__name__ for n, m in net.named_modules() if n})
    expected = {}
    for name in ref_order:
        mine = records.get(name, {})
        expected[name] = {
            "dy": t.reference(f"{name}.dy", mine.get("dy")),
            "dx": t.reference(f"{name}.dx", mine.get("dx")),
            # parameter gradients: the reference values compared above
            "grads": {p: t.expected(f"d{name}.{p}") for p in t.reference(
                f"{name}.params", sorted(mine.get("grads", {})))},
        }
    if findings:
        lines = locate_in_network(records, expected, ref_order, blocks, types, t.tol("gradient"))
        more = f" (and {len(findings) - 1} more tensors)" if len(findings) > 1 else ""
        t.fail(findings[0].summary + more,
               "\n".join(lines) if lines else findings[0].explanation,
               "locate" if lines else findings[0].signature)


@suite.test("network_backward", cases=NETWORK_CASES + [
    dict(N=2, H=8, W=8, shortcut="B", features="layer1 and layer3")])
def network_backward_hidden(t, N, H, W, shortcut, in_channels=3, features=""):
    net = randomize(t, SmallResNet(shortcut, in_channels))
    x = t.input("x", normal(N, in_channels, H, W))
    if features:
        maps = net.forward_features(x)
        g1 = t.input("g1", normal(*np.shape(maps["layer1"])))
        g3 = t.input("g3", normal(*np.shape(maps["layer3"])))
        gradients_with_diagnosis(t, net, lambda: net.backward_features({"layer1": g1, "layer3": g3}))
    else:
        out = net(x)
        dy = t.input("dy", normal(*np.shape(out)))
        gradients_with_diagnosis(t, net, lambda: net.backward(dy))


def directional_error(net, x):
    """Relative error of the directional derivative along a random direction (float64).

    check_direction scales the direction to each tensor's own size and keeps the step whose
    difference quotient agrees best with the next smaller step's, among those agreeing within
    measured round-off (no ReLU kink inside): a correct network comes out at or below 1e-8 on
    either OpenBLAS kernel, a wrong factor in one layer at or above 1e-3
    (docs/guides/gradcheck.md), so the tolerance of 1e-6 keeps 100x on both sides."""
    return check_direction(net, x).norm_error


GRADCHECK_CASES = [
    dict(model="cifar_resnet20", N=2, H=8, W=8),
    dict(model="cifar_resnet20", N=2, H=8, W=6, shortcut="B"),
    dict(model="plain_cifar_resnet8", N=3, H=6, W=6),
]


@suite.test("gradcheck", cases=GRADCHECK_CASES)
def gradcheck_hidden(t, model, N, H, W, shortcut="A"):
    plain = model.startswith("plain_")
    depth = int(model.split("resnet")[-1])
    net = randomize(t, models.cifar_resnet(depth, shortcut=shortcut, skip=not plain))
    x = t.input("x", normal(N, 3, H, W))
    out = net(x)
    dy = t.input("dy", normal(*np.shape(out)))
    gradients_with_diagnosis(t, net, lambda: net.backward(dy))
    if t.recording:
        return  # nothing to store: the check below compares the network with itself
    error = directional_error(net, x)
    t.check(error < t.tol("directional"),
            f"the directional derivative along a random direction disagrees with the numerical "
            f"one: relative error {error:.2e} (allowed {t.tol('directional'):.0e})")
