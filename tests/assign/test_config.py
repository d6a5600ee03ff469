"""Assignment configurations: loaded, checked, overridden."""
import pytest

from tinyresnet.assign.config import ConfigError, load_assignment, withheld_regions


def test_a1_parts_points_and_files():
    a1 = load_assignment("A1")
    assert a1.id == "A1" and a1.seed == 2015
    assert [p.id for p in a1.graded_parts][:2] == ["conv_forward", "conv_backward"]
    assert a1.max_points + sum(p.points for p in a1.parts if p.manual) == 100
    assert "tinyresnet/functional/conv.py" in a1.files
    assert a1.part("softmax_ce_forward").regions == ["softmax_ce_forward", "log_softmax"]
    assert a1.tolerance("gradient") == 1e-7


@pytest.mark.parametrize("name", ["A1", "A2", "A3", "A4"])
def test_every_assignment_totals_one_hundred_points(name):
    assert sum(p.points for p in load_assignment(name).parts) == 100


def test_earlier_assignments_withhold_later_answers():
    withheld = withheld_regions(load_assignment("A1"))
    assert {"batchnorm_backward", "block_backward", "backward_features"} <= set(withheld)
    assert "conv_backward_naive" in withheld and "conv_backward" not in withheld
    assert withheld_regions(load_assignment("A3")) == []  # it trains with the library's SGD
    assert {"sgd_update", "adam_update"} <= set(withheld_regions(load_assignment("A2")))


def test_overrides_reach_parts_by_id():
    a3 = load_assignment("A3", overrides={"parts.train.params.epochs": 1, "seed": 7})
    assert a3.part("train").params["epochs"] == 1 and a3.seed == 7
    with pytest.raises(ConfigError, match="no part 'nope'"):
        load_assignment("A3", overrides={"parts.nope.points": 1})


@pytest.mark.parametrize("text, message", [
    ('id = "X"\nfiles = []\n', "missing required key 'parts'"),
    ('id = "X"\nfiles = []\ncolour = 1\nparts = []\n', "unknown keys"),
    ('id = "X"\nfiles = []\n[[parts]]\nid = "a"\npoints = 1\n[[parts]]\nid = "a"\npoints = 2\n',
     "listed twice"),
    ('id = "X"\nfiles = []\n[[parts]]\nid = "a"\npoints = 0\n', "points must be positive"),
    ('id = "X"\nfiles = [\n', "cannot read"),
])
def test_bad_configurations_are_refused_with_the_reason(tmp_path, text, message):
    (tmp_path / "X").mkdir()
    (tmp_path / "X" / "assignment.toml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_assignment("X", tmp_path)


def test_an_unknown_assignment_says_where_it_looked(tmp_path):
    with pytest.raises(ConfigError, match="assignment 'A9' not found"):
        load_assignment("A9", tmp_path)
