"""Models by name: ``get_model("resnet50", num_classes=10)``, for configs and the command line."""
from . import cifar, preact, resnet

__all__ = ["get_model", "list_models"]

_FACTORIES = {
    name: getattr(module, name)
    for module in (resnet, preact, cifar)
    for name in module.__all__
    if name[0].islower()
}


def list_models():
    """Every registered model name, sorted."""
    return sorted(_FACTORIES)


def get_model(name, **kwargs):
    """Build the model called ``name`` with the factory's keyword arguments.

    Raises ValueError naming the valid names when ``name`` is unknown.
    """
    try:
        factory = _FACTORIES[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"get_model: unknown model {name!r}; valid names are {', '.join(list_models())}"
        ) from None
    return factory(**kwargs)
