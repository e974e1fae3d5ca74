"""The package's structure: the pipeline's layers import downwards only, no import cycle, no
private name crosses a subpackage, scripts use the public API and never edit ``sys.path``."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "chm"

#: Each part of the package, by the layer it sits in: a module may import its own layer and
#: those below it, never one above (``chm.cascade`` never imports ``chm.model``).
LAYERS = {
    "chm._version": 0, "chm.utils": 0,
    "chm.features": 1, "chm.mrf": 1, "chm.io": 1, "chm.thresholds": 1, "chm.metrics": 1,
    "chm.base": 2, "chm.semi": 2, "chm.datasets": 2,
    "chm.classifiers": 3,
    "chm.cascade": 4,
    "chm.model": 5, "chm.convnet": 5, "chm.selection": 5, "chm._compat": 5,
    "chm.cli": 6, "chm.__main__": 7, "chm": 7,
    "chm.napari": 8,  # the napari plugin: a client of the package's face, which never imports it
}
#: Where a function-level import of chm is the point: the package's face imports the ConvNet
#: (and so torch) on first use, and the command line imports what a subcommand needs.
LAZY_IMPORTS_ALLOWED = {"chm", "chm.cli"}


def _modules():
    for f in sorted(PACKAGE.rglob("*.py")):
        parts = f.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, f, parts[-1] == "__init__"


MODULES = {name: (f, is_pkg) for name, f, is_pkg in _modules()}


def _layer(module):
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in LAYERS:
            return LAYERS[".".join(parts[:n])]
    raise AssertionError(f"{module} has no layer in tests/test_architecture.py's LAYERS: add it")


def _subpackage(module):
    return ".".join(module.split(".")[:2])


def _imports(name):
    """(target module, imported names, at module level?) of every chm import in module ``name``."""
    f, is_pkg = MODULES[name]
    tree = ast.parse(f.read_text())
    top = {id(n) for n in tree.body}
    for stmt in tree.body:  # imports under a top-level if/try still run at import time
        if isinstance(stmt, (ast.If, ast.Try)):
            top |= {id(n) for n in ast.walk(stmt)}
    package = name.split(".") if is_pkg else name.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            if target.split(".")[0] != "chm":
                continue
            names = [a.name for a in node.names]
            submodules = [f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES]
            for t in submodules or [target]:
                yield t, names, id(node) in top
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "chm":
                    yield a.name, [], id(node) in top


#: GUI packages: only the napari plugin may import them, so ``import chm`` never loads napari or Qt.
GUI = {"napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "magicgui", "superqt", "vispy"}


def test_only_the_plugin_imports_a_gui():
    found = []
    for name, (f, _) in MODULES.items():
        if name.startswith("chm.napari"):
            continue
        for node in ast.walk(ast.parse(f.read_text())):
            roots = ([a.name.split(".")[0] for a in node.names] if isinstance(node, ast.Import) else
                     [node.module.split(".")[0]] if isinstance(node, ast.ImportFrom) and node.module and not node.level
                     else [])
            found += [f"{name} imports {r}" for r in roots if r in GUI]
    assert not found, "; ".join(found)


def test_every_module_has_a_layer():
    for name in MODULES:
        _layer(name)


def test_layers_import_downwards_only():
    wrong = [f"{name} -> {target}" for name in MODULES for target, _, _ in _imports(name)
             if _layer(target) > _layer(name)]
    assert not wrong, "imports of a higher layer: " + ", ".join(wrong)


def test_no_import_cycle():
    graph = {name: {t for t, _, top in _imports(name) if top and t in MODULES and t != name} for name in MODULES}
    state = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_no_function_level_import_hides_a_dependency():
    hidden = [f"{name} -> {target}" for name in MODULES if name not in LAZY_IMPORTS_ALLOWED
              for target, _, top in _imports(name) if not top]
    assert not hidden, "function-level imports of chm modules: " + ", ".join(hidden)


def test_no_private_name_crosses_a_subpackage():
    crossing = [f"{name} imports {n} from {target}" for name in MODULES for target, names, _ in _imports(name)
                for n in names if n.startswith("_") and not n.startswith("__")
                and _subpackage(target) != _subpackage(name) and name != "chm"]
    assert not crossing, "; ".join(crossing)


SCRIPTS = sorted([*ROOT.glob("experiments/*.py"), *ROOT.glob("benchmarks/*.py"), *ROOT.glob("docs/*.py")])


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_scripts_use_the_public_api(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "chm":
            private = [p for p in node.module.split(".") if p.startswith("_")]
            private += [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
            assert not private, f"{path.name}:{node.lineno} imports private {private} from {node.module}"
        elif isinstance(node, ast.Import):
            for a in node.names:
                assert not any(p.startswith("_") for p in a.name.split(".")[1:]) or a.name.split(".")[0] != "chm", \
                    f"{path.name}:{node.lineno} imports the private module {a.name}"


def test_no_sys_path_edit_anywhere():
    edits = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in (".venv", "build") or path == Path(__file__).resolve():
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr == "path" and isinstance(node.value, ast.Name)
                    and node.value.id == "sys"):
                edits.append(f"{rel}:{node.lineno}")
    assert not edits, "sys.path used in " + ", ".join(edits)


def test_old_module_paths_still_import_for_one_release():
    import importlib
    import importlib.util
    import warnings

    from chm._compat import MOVED

    for old, new in MOVED.items():
        if new.startswith("chm.convnet") and importlib.util.find_spec("torch") is None:
            continue  # the ConvNet's modules need the convnet extra
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            module = importlib.import_module(old)
        assert any(issubclass(w.category, DeprecationWarning) and new in str(w.message) for w in caught), old
        target = importlib.import_module(new)
        for name in getattr(target, "__all__", []):
            assert getattr(module, name) is getattr(target, name), f"{old}.{name}"
