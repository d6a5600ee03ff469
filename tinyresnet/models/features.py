r"""A network as a backbone of named feature stages followed by a classifier head.

Detection and segmentation use a ResNet as a backbone: they read the output of the stem and of
``layer1`` .. ``layer4`` (strides 2, 4, 8, 16, 32 for the ImageNet networks) and send gradients
back into several of them at once.  ``forward_features`` returns those outputs; ``backward_features``
takes the gradients arriving at any of them and adds each one in where its stage ends, since a
feature read both by the next stage and by a detection head receives the sum of both gradients:

.. math::  \frac{\partial L}{\partial f_k} = \frac{\partial L}{\partial f_k}\Big|_{\text{head}}
           + \Big(\frac{\partial f_{k+1}}{\partial f_k}\Big)^\top \frac{\partial L}{\partial f_{k+1}}

``forward`` is ``forward_features`` then the head, and ``backward`` is its reverse, so a classifier
and a backbone share one code path.
"""
from collections import OrderedDict

from .. import nn

__all__ = ["FeatureNetwork"]


class FeatureNetwork(nn.Module):
    """Base of ResNet and CifarResNet: subclasses list their stages and their head.

    ``feature_stages()`` returns ``[(name, [module, ...]), ...]``, input to output; the feature
    called ``name`` is the output of the stage's last module.  ``head()`` returns the modules
    after the last stage (pooling, flatten, fc).
    """

    def feature_stages(self):
        raise NotImplementedError(f"{type(self).__name__} does not list its feature stages")

    def head(self):
        raise NotImplementedError(f"{type(self).__name__} does not list its head")

    @property
    def feature_names(self):
        return [name for name, _ in self.feature_stages()]

    def forward_features(self, x):
        """Run the backbone.

        x : array (N, C, H, W) -> OrderedDict name -> feature map (N, C_k, H_k, W_k), input to
        output (for the ImageNet ResNet: "stem", "layer1", ..., "layer4").
        """
        # BEGIN SOLUTION forward_features
        features = OrderedDict()
        for name, modules in self.feature_stages():
            for m in modules:
                x = m(x)
            features[name] = x
        # END SOLUTION
        self._feature_shapes = {name: tuple(f.shape) for name, f in features.items()}
        return features

    def backward_features(self, grads):
        """Back-propagate gradients arriving at any of the features.

        grads : dict name -> dL/d(feature), each of its feature's shape (missing names: zero).
        Returns dL/dx (N, C, H, W); parameter gradients are accumulated into ``.grad``.
        """
        names = self.feature_names
        unknown = [k for k in grads if k not in names]
        if unknown:
            raise ValueError(
                f"{self._describe()}.backward_features: unknown feature {unknown[0]!r}, "
                f"expected some of {', '.join(names)}"
            )
        if not any(grads.get(k) is not None for k in names):
            raise ValueError(f"{self._describe()}.backward_features: no gradient given")
        shapes = getattr(self, "_feature_shapes", None)
        if shapes is None:
            raise RuntimeError(
                f"{self._describe()}.backward_features: run forward_features (or forward) first"
            )
        # BEGIN SOLUTION backward_features
        d = None
        for name, modules in reversed(self.feature_stages()):
            g = grads.get(name)
            if g is not None:
                if tuple(g.shape) != shapes.get(name):
                    raise ValueError(
                        f"{self._describe()}.backward_features: gradient for {name!r} must have "
                        f"the feature's shape {shapes.get(name)}, got {tuple(g.shape)}"
                    )
                # A feature used twice (next stage, and a head outside) gets both gradients.
                d = g if d is None else d + g
            if d is None:
                continue  # no gradient reaches this stage: deeper features were not used
            for m in reversed(modules):
                d = m.backward(d)
        return d
        # END SOLUTION

    def forward_head(self, x):
        # BEGIN SOLUTION forward_head
        for m in self.head():
            x = m(x)
        return x
        # END SOLUTION

    def backward_head(self, dy):
        # BEGIN SOLUTION backward_head
        for m in reversed(self.head()):
            dy = m.backward(dy)
        return dy
        # END SOLUTION

    def forward(self, x):
        """x (N, C, H, W) -> logits (N, num_classes)."""
        # BEGIN SOLUTION network_forward
        features = self.forward_features(x)
        return self.forward_head(features[next(reversed(features))])
        # END SOLUTION

    def backward(self, dy):
        """dy = dL/dlogits (N, num_classes) -> dL/dx; accumulates every parameter's ``.grad``."""
        # BEGIN SOLUTION network_backward
        return self.backward_features({self.feature_names[-1]: self.backward_head(dy)})
        # END SOLUTION
