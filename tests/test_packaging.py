"""Every third-party module the code imports is declared in pyproject.toml, where it is needed.

The library (``chm``) may import only the core dependencies (and, for optional
back ends, a package of an extra); experiments, benchmarks and tests may also import their
extra's packages. ``.ci/run`` checks the other half: a non-editable install in a fresh venv runs
``chm train`` and ``chm predict``.
"""

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")

ROOT = Path(__file__).resolve().parents[1]
#: Modules the library imports only for an optional back end or the napari plugin; each must be in some extra.
OPTIONAL = {"torch", "napari", "qtpy"}
#: Distribution names of modules whose import name differs, for when they are not installed here.
ALIASES = {"sklearn": "scikit-learn", "skimage": "scikit-image", "PIL": "pillow", "yaml": "pyyaml",
           "cv2": "opencv-python"}
#: Which extra each folder of scripts may use besides the core dependencies.
FOLDERS = {"chm": None, "experiments": "experiments", "benchmarks": "bench", "tests": "test"}


def _name(requirement):
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9_.-]+", requirement).group()).lower()


def _imports(path):
    """Top-level names of the absolute imports in a file."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_every_imported_module_is_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {_name(r) for r in project["dependencies"]}
    extras = {k: {_name(r) for r in v} for k, v in project["optional-dependencies"].items()}
    local = set(FOLDERS) | {p.stem for folder in FOLDERS for p in (ROOT / folder).rglob("*.py")}
    dists = packages_distributions()
    missing = []
    for folder, extra in FOLDERS.items():
        allowed = core | (extras[extra] if extra else set())
        for path in sorted((ROOT / folder).rglob("*.py")):
            for module in _imports(path) - local - set(sys.stdlib_module_names):
                names = {_name(d) for d in dists.get(module, [ALIASES.get(module, module)])}
                if extra is None and module in OPTIONAL:
                    ok = any(names & e for e in extras.values())
                else:
                    ok = bool(names & allowed)
                if not ok:
                    missing.append(f"{path.relative_to(ROOT)} imports {module} ({', '.join(sorted(names))})")
    assert not missing, "undeclared dependencies:\n" + "\n".join(missing)
