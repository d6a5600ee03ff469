"""An assignment's configuration: ``assignments/<id>/assignment.toml`` (or ``.json``).

::

    id = "A1"
    title = "Layers"
    notebook = "A1.ipynb"
    seed = 231                  # every test input derives from it
    time_limit_s = 10           # per test case (a part may override it)
    import_time_limit_s = 60    # to import the student's package (default: 60 s or the longest part limit)
    files = ["tinyresnet/functional/conv.py", ...]   # what the student edits and submits
    optional_files = [...]      # taken from a submission when present (A3: the student's layers)
    withhold = ["@A2", "conv_backward_naive"]       # regions stubbed but not graded (@A2: all of A2's)
    public_tests = "tests/public_tests.py"
    hidden_tests = "tests/hidden_tests.py"

    [tolerances]                # relative error allowed, by kind of tensor
    output = 1e-7
    gradient = 1e-7

    [[parts]]
    id = "conv_forward"         # also the solution region's id, unless ``regions`` lists others
    title = "Convolution forward by im2col"
    points = 10
    section = "2.1"             # where the notebook explains it (named by the stub)
    manual = false              # true: graded by hand (written questions)
    params = {}                 # passed to the part's tests as ``t.params``

``load_assignment`` finds an assignment by id (in ``./assignments``, in the folder above the
package, or in the current folder for a student release) or by path, and applies overrides such as
``{"parts.train.params.epochs": 1}`` (a reduced configuration for tests).
"""
import copy
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "ConfigError", "Part", "Assignment", "load_assignment", "find_assignment_dir",
    "default_assignments_dir", "list_assignments", "withheld_regions",
]

CONFIG_NAMES = ("assignment.toml", "assignment.json")
_TOP_KEYS = {
    "id", "title", "notebook", "seed", "time_limit_s", "import_time_limit_s", "files",
    "optional_files", "withhold",
    "public_tests",
    "hidden_tests", "tolerances", "parts",
}
_PART_KEYS = {"id", "title", "points", "section", "regions", "manual", "time_limit_s", "params"}


class ConfigError(ValueError):
    """An assignment configuration is missing, unreadable or inconsistent."""


@dataclass
class Part:
    """One graded (or hand-graded) part of an assignment."""

    id: str
    title: str
    points: float
    section: str
    regions: list
    manual: bool = False
    time_limit_s: float = 10.0
    params: dict = field(default_factory=dict)


@dataclass
class Assignment:
    """A loaded configuration; paths are resolved against ``root`` (the config's folder)."""

    id: str
    title: str
    root: Path
    config_path: Path
    notebook: str
    seed: int
    time_limit_s: float
    files: list
    optional_files: list
    withhold: list
    public_tests: str
    hidden_tests: str
    tolerances: dict
    parts: list
    import_time_limit_s: float = None

    @property
    def all_files(self):
        """The files a submission may hold: the required ones, then the optional ones."""
        return self.files + [f for f in self.optional_files if f not in self.files]

    @property
    def graded_parts(self):
        return [p for p in self.parts if not p.manual]

    @property
    def max_points(self):
        return sum(p.points for p in self.graded_parts)

    def part(self, part_id):
        for p in self.parts:
            if p.id == part_id:
                return p
        raise KeyError(f"{self.id}: no part {part_id!r}; parts are {[p.id for p in self.parts]}")

    def region_owner(self):
        """region id -> Part, for this assignment's graded regions."""
        return {r: p for p in self.graded_parts for r in p.regions}

    def tolerance(self, kind):
        return float(self.tolerances.get(kind, self.tolerances.get("default", 1e-7)))


def default_assignments_dir():
    """``./assignments`` when it exists, else the ``assignments`` folder beside the package."""
    here = Path.cwd() / "assignments"
    if here.is_dir():
        return here
    return Path(__file__).resolve().parents[2] / "assignments"


def _config_in(folder):
    for name in CONFIG_NAMES:
        if (folder / name).is_file():
            return folder / name
    return None


def find_assignment_dir(name, assignments_dir=None):
    """The folder holding the configuration of assignment ``name``: a folder given by path, or
    the folder of that id in ``assignments_dir`` (default: ``./<id>``, ``./assignments/<id>``,
    the ``assignments`` folder beside the package, or the current folder of a student release)."""
    explicit = Path(name)
    if explicit.is_dir() and _config_in(explicit) is not None and (
            explicit.is_absolute() or len(explicit.parts) > 1 or name in (".", "..")):
        return explicit.resolve()
    if assignments_dir is not None:
        candidates = [Path(assignments_dir) / name]
    else:
        candidates = [Path.cwd() / name, default_assignments_dir() / name, Path.cwd()]
    for folder in candidates:
        config = _config_in(folder) if folder.is_dir() else None
        if config is not None and _read(config).get("id") == name:
            return folder.resolve()
    where = ", ".join(str(c) for c in candidates)
    raise ConfigError(f"assignment {name!r} not found: no assignment.toml with id {name!r} in {where}")


def _read(path):
    try:
        if path.suffix == ".json":
            return json.loads(path.read_text(encoding="utf-8"))
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: cannot read the configuration: {e}") from None


def _apply_overrides(raw, overrides):
    """Set dotted keys; ``parts.<part id>.<key>...`` addresses a part by its id."""
    raw = copy.deepcopy(raw)
    for dotted, value in (overrides or {}).items():
        keys = dotted.split(".")
        node = raw
        if keys[0] == "parts" and len(keys) > 2:
            matches = [p for p in raw.get("parts", []) if p.get("id") == keys[1]]
            if not matches:
                raise ConfigError(f"override {dotted!r}: no part {keys[1]!r}")
            node, keys = matches[0], keys[2:]
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    return raw


def load_assignment(name, assignments_dir=None, overrides=None):
    """Load and check an assignment's configuration; returns an Assignment."""
    root = find_assignment_dir(name, assignments_dir)
    config_path = _config_in(root)
    raw = _apply_overrides(_read(config_path), overrides)

    def fail(message):
        raise ConfigError(f"{config_path}: {message}")

    unknown = set(raw) - _TOP_KEYS
    if unknown:
        fail(f"unknown keys {sorted(unknown)}; expected some of {sorted(_TOP_KEYS)}")
    for key in ("id", "parts", "files"):
        if key not in raw:
            fail(f"missing required key {key!r}")
    parts, seen = [], set()
    default_limit = float(raw.get("time_limit_s", 10.0))
    for entry in raw["parts"]:
        bad = set(entry) - _PART_KEYS
        if bad:
            fail(f"part {entry.get('id')!r}: unknown keys {sorted(bad)}")
        if "id" not in entry or "points" not in entry:
            fail(f"every part needs an id and points, got {entry!r}")
        if entry["id"] in seen:
            fail(f"part {entry['id']!r} is listed twice")
        seen.add(entry["id"])
        if not float(entry["points"]) > 0:
            fail(f"part {entry['id']!r}: points must be positive, got {entry['points']!r}")
        manual = bool(entry.get("manual", False))
        parts.append(Part(
            id=entry["id"],
            title=entry.get("title", entry["id"]),
            points=float(entry["points"]),
            section=str(entry.get("section", "")),
            regions=[] if manual else list(entry.get("regions", [entry["id"]])),
            manual=manual,
            time_limit_s=float(entry.get("time_limit_s", default_limit)),
            params=dict(entry.get("params", {})),
        ))
    return Assignment(
        id=raw["id"],
        title=raw.get("title", raw["id"]),
        root=root,
        config_path=config_path,
        notebook=raw.get("notebook", f"{raw['id']}.ipynb"),
        seed=int(raw.get("seed", 0)),
        time_limit_s=default_limit,
        files=list(raw["files"]),
        optional_files=list(raw.get("optional_files", [])),
        withhold=list(raw.get("withhold", [])),
        public_tests=raw.get("public_tests", "tests/public_tests.py"),
        hidden_tests=raw.get("hidden_tests", "tests/hidden_tests.py"),
        tolerances=dict(raw.get("tolerances", {})),
        parts=parts,
        import_time_limit_s=(float(raw["import_time_limit_s"]) if "import_time_limit_s" in raw
                             else None),
    )


def list_assignments(assignments_dir=None):
    """Ids of every assignment folder under ``assignments_dir``, sorted."""
    folder = Path(assignments_dir) if assignments_dir else default_assignments_dir()
    if not folder.is_dir():
        return []
    return sorted(d.name for d in folder.iterdir() if d.is_dir() and _config_in(d) is not None)


def withheld_regions(assignment, assignments_dir=None):
    """Region ids to stub without grading: the names listed, and for ``@A2`` every region of
    A2's parts and every region A2 itself withholds by name (a later assignment's answers)."""
    regions = []
    for entry in assignment.withhold:
        if entry.startswith("@"):
            other = load_assignment(entry[1:], assignments_dir or assignment.root.parent)
            regions += [r for p in other.graded_parts for r in p.regions]
            regions += [r for r in other.withhold if not r.startswith("@")]
        else:
            regions.append(entry)
    return list(dict.fromkeys(r for r in regions if r not in assignment.region_owner()))
