"""get_model: every registered name builds its model; unknown names list the valid ones."""
import pytest

from tinyresnet import models


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown model 'resnet19'.*resnet18, resnet34"):
        models.get_model("resnet19")


@pytest.mark.parametrize("name", models.list_models())
def test_every_name_builds(name, skip_init):
    kwargs = {"depth": 20} if name == "cifar_resnet" else {}
    model = models.get_model(name, num_classes=5, **kwargs)
    assert model.fc.out_features == 5
    assert (name.startswith("plain_")) == (not next(models.residual_blocks(model))[1].skip)
    assert ("preact" in name) == model.preact


def test_keyword_arguments_reach_the_model(skip_init):
    model = models.get_model("cifar_resnet56", shortcut="B", num_classes=100)
    assert model.fc.out_features == 100 and model.layer2[0].downsample is not None
    assert len(model.layer1) == 9
