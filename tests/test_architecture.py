"""The package's shape (docs/architecture.md): no import cycles, floors respected.

Reads every module's source (its AST: function-level imports count), so a
cycle hidden inside a function fails here, not in a user's traceback. Module
names are the installed ones: `bnn_tf.*`, `bnn_tf.models.*` (models/) and
`bnn_tf.converters.*` (converters/).
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import bnn_tf

ROOT = Path(__file__).resolve().parents[1]
# Installed name → folder in the repository (pyproject's package-dir).
PACKAGES = {"bnn_tf": ROOT / "bnn_tf", "bnn_tf.models": ROOT / "models",
            "bnn_tf.converters": ROOT / "converters"}  # fmt: skip

# Import edges known to be cyclic, each to be deleted by the change that ends it
# (empty: issue 18 ended the last one, lint ↔ binary_dense, with converters/rules.py).
KNOWN_CYCLES: set[frozenset[str]] = set()


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            name = ".".join([package, *parts])
            found[name] = path
    return found


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _auto_imports(name: str) -> list[str]:
    # methods/ and models/ import every public submodule at run time (pkgutil):
    # invisible to the AST, so the edges are added here.
    if not _is_package(name) or "pkgutil.iter_modules" not in MODULES[name].read_text():
        return []
    prefix = f"{name}."
    return [
        m for m in MODULES
        if m.startswith(prefix) and "." not in m[len(prefix):]
        and not m[len(prefix):].startswith("_") and m != f"{name}.registry"
    ]  # fmt: skip


def _resolve(importer: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    # A package's own name is its folder; a module's folder is its parent.
    keep = len(base) - node.level + (1 if _is_package(importer) else 0)
    return ".".join(base[:keep] + ([node.module] if node.module else []))


def imports_of(name: str) -> set[str]:
    """The package modules `name` imports anywhere in its source (function bodies included)."""
    tree = ast.parse(MODULES[name].read_text(), filename=str(MODULES[name]))
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                targets.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            module = _resolve(name, node)
            for alias in node.names:
                # `from bnn_tf import training` imports the module bnn_tf.training.
                sub = f"{module}.{alias.name}"
                targets.add(sub if sub in MODULES else module)
    resolved = set(_auto_imports(name))
    for target in targets:
        # `import bnn_tf.models.registry` names a module; a name inside one maps to it.
        while target and target not in MODULES:
            target = target.rpartition(".")[0]
        if target and target != name:
            resolved.add(target)
    return resolved


GRAPH = {name: imports_of(name) for name in MODULES}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_module_map_sees_the_whole_package():
    for name in ("bnn_tf.training", "bnn_tf.experiment", "bnn_tf.methods.recu",
                 "bnn_tf.models.registry", "bnn_tf.converters.lint", "bnn_tf.cli"):  # fmt: skip
        assert name in MODULES, name
    # The walker resolves the import forms the package uses.
    assert "bnn_tf.training" in GRAPH["bnn_tf.experiment"]  # from bnn_tf import training
    assert "bnn_tf.models" in GRAPH["bnn_tf.experiment"]  # from bnn_tf import models as zoo
    assert "bnn_tf.methods.recu" in GRAPH["bnn_tf.methods"]  # pkgutil auto-import
    assert "bnn_tf.introspect" in GRAPH["bnn_tf.methods.recu"]


def test_the_cycle_finder_finds_a_function_level_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    graph = {v: {w for w in ws if frozenset({v, w}) not in KNOWN_CYCLES} for v, ws in GRAPH.items()}
    assert _cycles(graph) == [], "import cycle(s); see docs/architecture.md for the floors"


def test_known_cycles_are_still_cycles():
    # An allowlist entry outliving its cycle would hide the next one: delete it.
    for pair in KNOWN_CYCLES:
        a, b = sorted(pair)
        assert b in GRAPH[a] and a in GRAPH[b], f"{a} ↔ {b} is gone: remove it from KNOWN_CYCLES"


CORE = [
    m for m in MODULES
    if m.startswith("bnn_tf.") and not m.startswith(("bnn_tf.models", "bnn_tf.converters"))
    and m not in ("bnn_tf.cli", "bnn_tf.demo", "bnn_tf.experiment")
]  # fmt: skip


def _reaches(name: str, floor: str) -> list[str]:
    return sorted(t for t in GRAPH[name] if t == floor or t.startswith(f"{floor}."))


@pytest.mark.parametrize("name", ["bnn_tf", *CORE])
@pytest.mark.parametrize("above", ["bnn_tf.models", "bnn_tf.converters", "bnn_tf.cli"])
def test_core_never_imports_the_floors_above(name, above):
    assert _reaches(name, above) == [], f"{name} imports {above} (docs/architecture.md)"


@pytest.mark.parametrize("name", [m for m in MODULES if m.startswith("bnn_tf.methods")])
@pytest.mark.parametrize(
    "above", ["bnn_tf.training", "bnn_tf.recipes", "bnn_tf.optimizers", "bnn_tf.callbacks",
              "bnn_tf.experiment", "bnn_tf.distill"],
)  # fmt: skip
def test_methods_never_import_training_or_optimizers(name, above):
    assert _reaches(name, above) == [], f"{name} imports {above}"


@pytest.mark.parametrize("name", [m for m in MODULES if m.startswith("bnn_tf.converters")])
def test_converters_never_import_the_zoo(name):
    assert _reaches(name, "bnn_tf.models") == [], f"{name} imports bnn_tf.models"


def test_only_the_top_floor_imports_the_zoo():
    importers = {
        m for m, ts in GRAPH.items()
        if not m.startswith("bnn_tf.models") and any(t.startswith("bnn_tf.models") for t in ts)
    }  # fmt: skip
    assert importers <= {"bnn_tf.cli", "bnn_tf.demo", "bnn_tf.experiment"}, importers


def test_training_never_imports_recipes_and_recipes_never_training_above():
    assert "bnn_tf.recipes" not in GRAPH["bnn_tf.training"]
    assert "bnn_tf.experiment" not in GRAPH["bnn_tf.training"] | GRAPH["bnn_tf.recipes"]
    assert "bnn_tf.distill" not in GRAPH["bnn_tf.training"]


def _private_uses(name: str) -> list[str]:
    """`module._name` of another package module, read or imported by `name`."""
    tree = ast.parse(MODULES[name].read_text())
    aliases: dict[str, str] = {}  # local name → package module
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name in MODULES:
                    aliases[a.asname or a.name.split(".")[0]] = a.name
        elif isinstance(node, ast.ImportFrom):
            module = _resolve(name, node)
            for a in node.names:
                sub = f"{module}.{a.name}"
                if sub in MODULES:
                    aliases[a.asname or a.name] = sub
                elif (
                    module in MODULES and module != name
                    and a.name.startswith("_") and not a.name.startswith("__")
                ):  # fmt: skip
                    found.append(f"from {module} import {a.name}")
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and isinstance(node.value, ast.Name)
            and aliases.get(node.value.id, name) != name
        ):
            found.append(f"{aliases[node.value.id]}.{node.attr}")
    return sorted(set(found))


# Private names still used across modules, each to be deleted by the change that
# ends it (empty since converters got a public load_model and shared rules).
KNOWN_PRIVATE: dict[str, set[str]] = {}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_private_names_across_modules(name):
    uses = set(_private_uses(name))
    assert uses - KNOWN_PRIVATE.get(name, set()) == set(), f"{name} uses private names"


def test_known_private_uses_are_still_there():
    for name, uses in KNOWN_PRIVATE.items():
        gone = uses - set(_private_uses(name))
        assert not gone, f"{name} no longer uses {gone}: remove it from KNOWN_PRIVATE"


def test_the_private_name_finder_finds_both_forms(tmp_path, monkeypatch):
    source = "from bnn_tf import training\nfrom bnn_tf.recipes import _x\ntraining._y()\n"
    path = tmp_path / "probe.py"
    path.write_text(source)
    monkeypatch.setitem(MODULES, "bnn_tf.probe", path)
    assert _private_uses("bnn_tf.probe") == ["bnn_tf.training._y", "from bnn_tf.recipes import _x"]


def test_every_method_module_is_registered_and_old_paths_alias():
    from bnn_tf import methods

    on_disk = sorted(
        p.stem for p in (ROOT / "bnn_tf" / "methods").glob("*.py") if not p.stem.startswith("_")
    )
    assert list(methods.MODULES) == on_disk
    for name in methods.MODULES:
        module = importlib.import_module(f"bnn_tf.methods.{name}")
        # The pre-0.2 path `bnn_tf.<name>` is the same module object, not a copy.
        assert importlib.import_module(f"bnn_tf.{name}") is module
        assert getattr(bnn_tf, name) is module
    from bnn_tf.recu import ReCUConv2D  # the old import form, as users wrote it

    assert ReCUConv2D is methods.recu.ReCUConv2D
    # Registered with Keras under the unchanged key, so saved .keras files load.
    assert tf_keras_object("bnn_tf>ReCUConv2D") is ReCUConv2D


def tf_keras_object(key: str):
    import tensorflow as tf

    return tf.keras.utils.get_registered_object(key)
