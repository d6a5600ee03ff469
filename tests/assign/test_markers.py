"""Solution markers: parsed exactly, unbalanced ones fail loudly, every configured region exists in
the library (so an edit that drops a marker fails CI), and every region is used somewhere."""
import shutil
import textwrap

import pytest

from tinyresnet.assign.config import list_assignments, load_assignment, withheld_regions
from tinyresnet.assign.markers import MarkerError, find_regions, render_release, scan_package
from tinyresnet.assign.release import build, check_regions, package_root

SOURCE = textwrap.dedent('''
    def double(x):
        """Twice x."""
        check(x)
        # BEGIN SOLUTION double
        y = 2 * x
        return y
        # END SOLUTION


    class Block:
        def backward(self, dy):
            # BEGIN SOLUTION block_backward
            return dy
            # END SOLUTION
''')


def test_regions_are_found_with_their_function():
    regions = find_regions(SOURCE, "m.py")
    assert [(r.id, r.function, r.indent) for r in regions] == [
        ("double", "double", "    "), ("block_backward", "Block.backward", "        ")]
    assert SOURCE.splitlines()[regions[0].begin - 1].strip() == "# BEGIN SOLUTION double"


@pytest.mark.parametrize("broken, message", [
    ("# BEGIN SOLUTION a\nx = 1\n# END SOLUTION\n", "is not inside a function body"),
    ("def f():\n    # BEGIN SOLUTION a\n    return 1\n", "has no '# END SOLUTION'"),
    ("def f():\n    return 1\n    # END SOLUTION\n", "without a '# BEGIN SOLUTION'"),
    ("def f():\n    # BEGIN SOLUTION a\n    # BEGIN SOLUTION b\n    return 1\n    # END SOLUTION\n",
     "regions cannot nest"),
    ("def f():\n    # BEGIN SOLUTION\n    return 1\n    # END SOLUTION\n", "needs a region id"),
    ("def f():\n    # BEGIN SOLUTION a\n    return 1\n    # END SOLUTION\n"
     "def g():\n    # BEGIN SOLUTION a\n    return 1\n    # END SOLUTION\n", "repeats"),
    ("def f():\n    # BEGIN  SOLUTION a  # typo\n    return 1\n", "malformed solution marker"),
])
def test_unbalanced_or_malformed_markers_fail_loudly(broken, message):
    with pytest.raises(MarkerError, match=message):
        find_regions(broken, "m.py")


def test_release_replaces_chosen_regions_with_a_stub_and_keeps_the_others():
    text = render_release(SOURCE, "m.py", {"double": "A9 part 'double': see section 1"})
    assert "SOLUTION" not in text
    assert "y = 2 * x" not in text and "return dy" in text
    assert '"""Twice x."""' in text and "check(x)" in text  # signature and docstring stay
    namespace = {"check": lambda x: None}
    exec(compile(text, "m.py", "exec"), namespace)
    with pytest.raises(NotImplementedError, match="A9 part 'double': see section 1"):
        namespace["double"](3)


@pytest.mark.parametrize("assignment", list_assignments())
def test_every_configured_marker_exists_in_the_library(assignment):
    config = load_assignment(assignment)
    regions = scan_package(package_root())
    owner = check_regions(config, regions, withheld_regions(config))
    assert owner, f"{assignment} grades no region"


def test_every_marker_in_the_library_belongs_to_some_assignment():
    used = set()
    for name in list_assignments():
        config = load_assignment(name)
        used |= set(config.region_owner()) | set(withheld_regions(config))
    orphans = set(scan_package(package_root())) - used
    assert not orphans, f"regions no assignment uses: {sorted(orphans)}"


def test_there_are_three_assignments():
    assert list_assignments() == ["A1", "A2", "A3", "A4"]


def test_build_fails_loudly_when_a_configured_region_is_missing(tmp_path):
    with pytest.raises(MarkerError, match="needs region 'conv_backward_fast'"):
        build("A1", tmp_path, overrides={"parts.conv_backward.regions": ["conv_backward_fast"]})


def test_a_broken_marker_in_a_library_module_is_named_with_its_line(tmp_path):
    shutil.copytree(package_root() / "tinyresnet", tmp_path / "tinyresnet",
                    ignore=shutil.ignore_patterns("__pycache__"))
    relu = tmp_path / "tinyresnet" / "functional" / "activation.py"
    relu.write_text(relu.read_text().replace("    # END SOLUTION\n", "", 1))
    with pytest.raises(MarkerError, match=r"tinyresnet/functional/activation.py:\d+: region "
                                          r"'relu_backward' begins inside region 'relu_forward'"):
        scan_package(tmp_path)
