"""The package's import graph follows docs/architecture.md: layers import only downwards (or within their layer),
modules import each other without cycles, and no module imports another module's ``_private`` name; the wheel
holds the library and nothing of the studies (``studies/``), and no module of it reads the project's data folder.

The graph is read from the source (``ast``), imports inside functions included, so a deferred import counts as
much as a top-level one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ssl_featurizer"

#: lowest first; a module may import modules of its own layer or of a lower one (the same list is drawn in
#: docs/architecture.md). Keys are module names or package prefixes; the longest matching prefix wins.
LAYERS: list[tuple[str, ...]] = [
    ("ssl_featurizer.graph", "ssl_featurizer.pooling", "ssl_featurizer.readers", "ssl_featurizer.plotting",
     "ssl_featurizer.examples", "ssl_featurizer.locking", "ssl_featurizer.layer_sets"),
    ("ssl_featurizer.encoder",),
    ("ssl_featurizer.models",),
    ("ssl_featurizer.embed",),
    ("ssl_featurizer.featurizers",),
    ("ssl_featurizer.stream", "ssl_featurizer.dask_featurize", "ssl_featurizer.negnn", "ssl_featurizer.training",
     "ssl_featurizer.similarity", "ssl_featurizer.domain"),
    ("ssl_featurizer.bench", "ssl_featurizer.site_analysis"),
    ("ssl_featurizer.cli", "ssl_featurizer.demo", "ssl_featurizer"),
]


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(directory: Path) -> dict[str, Path]:
    return {module_name(p): p for p in sorted(directory.rglob("*.py"))}


def imports(path: Path, known: dict[str, Path]) -> list[tuple[str, str, int]]:
    """``(imported module, imported name or "", line)`` for every import of ``path``, relative ones resolved;
    ``from package import submodule`` is an import of the submodule."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, "", node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([node.module] if node.module else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append((sub, "", node.lineno) if sub in known else (base, alias.name, node.lineno))
    return found


def layer_of(module: str) -> int:
    best, level = -1, None
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, level = len(prefix), index
    if level is None:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS here and to docs/architecture.md")
    return level


KNOWN = modules(PACKAGE)


def graph() -> dict[str, set[str]]:
    return {mod: {target for target, _, _ in imports(path, KNOWN) if target in KNOWN and target != mod}
            for mod, path in KNOWN.items()}


def test_every_module_has_a_layer():
    for mod in KNOWN:
        layer_of(mod)


def test_no_import_from_a_lower_layer_to_a_higher_one():
    upward = [f"{mod} (layer {layer_of(mod)}) imports {target} (layer {layer_of(target)})"
              for mod, targets in graph().items() for target in sorted(targets) if layer_of(target) > layer_of(mod)]
    assert not upward, "\n".join(upward)


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``edges`` as a list of modules (first repeated at the end), or None (iterative DFS)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in sorted(edges):
        if state.get(start):
            continue
        path, stack = [start], [iter(sorted(edges[start]))]
        state[start] = 1
        while stack:
            target = next(stack[-1], None)
            if target is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(target) == 1:
                return path[path.index(target):] + [target]
            elif not state.get(target):
                state[target] = 1
                path.append(target)
                stack.append(iter(sorted(edges.get(target, ()))))
    return None


def test_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycles():
    # a package's __init__ is loaded before any of its modules, so it is left out: it may re-export them
    edges = {mod: {t for t in targets if not (KNOWN[t].name == "__init__.py" and mod.startswith(t + "."))}
             for mod, targets in graph().items()}
    cycle = find_cycle(edges)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


#: private modules of other packages that their own conventions make us import, each with the reason
SANCTIONED = {
    # scikit-learn's estimator convention (``_parameter_constraints``, checked by ``BaseEstimator._validate_params``)
    # takes its constraint types (Interval, Options, StrOptions) from here; they have no public home
    "sklearn.utils._param_validation",
}


def owner_of_private_module(module: str) -> str | None:
    """The package a ``_private`` module belongs to (``a.b._c.d`` → ``a.b``), or None for a public module."""
    parts = module.split(".")
    return next((".".join(parts[:i]) for i, part in enumerate(parts) if private(part)), None)


def private_attributes(path: Path, known: dict[str, Path]) -> list[tuple[str, str, int]]:
    """``(module, attribute, line)`` for every ``m._name`` where ``m`` names an imported module of ``known``."""
    tree = ast.parse(path.read_text(), str(path))
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in known:
                    aliases[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                if f"{node.module}.{alias.name}" in known:
                    aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and private(node.attr):
            dotted, value = [], node.value
            while isinstance(value, ast.Attribute):
                dotted.insert(0, value.attr)
                value = value.value
            if isinstance(value, ast.Name) and value.id in aliases:
                found.append((".".join([aliases[value.id], *dotted]), node.attr, node.lineno))
    return found


@pytest.mark.parametrize("directory", ["ssl_featurizer", "studies", "tests"])
def test_no_module_imports_another_modules_private_names(directory):
    """Neither ``from m import _name``, nor ``m._name``, nor a ``_private`` module from outside its package.

    Tests may still patch a module's private attribute to inject a fault or count calls (``m._name = ...``,
    ``monkeypatch.setitem(m._TABLE, ...)``): that instruments the module, it does not build on it.
    """
    known = {**KNOWN, **modules(ROOT / directory)}
    offences = []
    for mod, path in modules(ROOT / directory).items():
        where = path.relative_to(ROOT)
        for target, name, line in imports(path, known):
            if private(name) and target != mod:
                offences.append(f"{where}:{line} imports {name} from {target}")
            owner = owner_of_private_module(target)
            if owner is not None and not (mod == owner or mod.startswith(owner + ".")) and target not in SANCTIONED:
                offences.append(f"{where}:{line} imports {target}, private to {owner}")
        for target, name, line in private_attributes(path, known) if directory != "tests" else ():
            if target != mod:
                offences.append(f"{where}:{line} reads {name} of {target}")
    assert not offences, "\n".join(offences)


def test_the_private_checks_find_offences(tmp_path):
    """The checks above report what they are meant to (so a pass is not an empty check)."""
    assert owner_of_private_module("ssl_featurizer.featurizers._base") == "ssl_featurizer.featurizers"
    assert owner_of_private_module("ssl_featurizer.featurizers.base") is None
    bad = tmp_path / "bad.py"
    bad.write_text("import ssl_featurizer.readers as r\nfrom ssl_featurizer import embed\n"
                   "r._time_limit(1)\nembed.__name__\nembed._x.y\n")
    assert private_attributes(bad, KNOWN) == [("ssl_featurizer.readers", "_time_limit", 3),
                                              ("ssl_featurizer.embed", "_x", 5)]


STUDIES = ROOT / "studies"
#: what only the studies may name: the project's data folder, its environment variable and the studies' modules
STUDY_MARKERS = ("../shared", "SSL_FEATURIZER_SHARED")


def code_strings(path: Path) -> list[tuple[str, int]]:
    """String constants of ``path`` that are not docstrings (what the code can read or open), with their line."""
    tree = ast.parse(path.read_text(), str(path))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant) and isinstance(node.body[0].value.value, str)}
    return [(node.value, node.lineno) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def absolute_imports(path: Path) -> list[tuple[str, int]]:
    """Top-level package of every absolute import of ``path`` (deferred ones included), with its line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name.split(".")[0], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.module.split(".")[0], node.lineno))
    return found


def test_the_library_neither_imports_the_studies_nor_names_their_data():
    study_modules = {p.stem for p in STUDIES.rglob("*.py")} | {"studies"}
    offences = []
    for path in KNOWN.values():
        where = path.relative_to(ROOT)
        offences += [f"{where}:{line} imports {top}" for top, line in absolute_imports(path) if top in study_modules]
        offences += [f"{where}:{line} names {marker!r} in {text!r}" for text, line in code_strings(path)
                     for marker in STUDY_MARKERS if marker in text]
    assert not offences, "\n".join(offences)


def test_the_checks_see_a_study_import_and_a_data_path(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text('"""Reads ../shared in its docstring only."""\nimport project_tasks\n'
                   'def f():\n    """../shared here too."""\n    return "../shared/data"\n')
    assert code_strings(bad) == [("../shared/data", 5)]
    assert ("project_tasks", 2) in absolute_imports(bad) and (STUDIES / "project_tasks.py").exists()


def test_the_wheel_holds_the_library_and_no_study(tmp_path):
    """Build the wheel as ``pip install .`` would and read what it holds."""
    import subprocess
    import sys
    import zipfile

    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
                           "-q", "-w", str(tmp_path)], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    (wheel,) = tmp_path.glob("ssl_featurizer-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    modules_in_wheel = {n for n in names if n.endswith(".py")}
    source = {str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*.py")}
    assert source <= modules_in_wheel, f"library modules missing from the wheel: {sorted(source - modules_in_wheel)}"
    tops = {n.split("/")[0] for n in names}
    assert all(t == "ssl_featurizer" or t.endswith(".dist-info") for t in tops), tops
    assert not any(n.startswith(("studies/", "tests/", "docs/")) for n in names)
    study_modules = {p.name for p in STUDIES.glob("*.py")}
    assert not {n.rsplit("/", 1)[-1] for n in modules_in_wheel} & (study_modules - {"__init__.py"}), \
        "a study module was packaged"
    for card in (ROOT / "pretrained").glob("*/*/card.json"):  # every shipped model: card, weights, model card
        folder = "ssl_featurizer/pretrained/" + str(card.parent.relative_to(ROOT / "pretrained"))
        assert {f"{folder}/card.json", f"{folder}/model.safetensors", f"{folder}/README.md"} <= names, folder
    for name in modules_in_wheel:
        with zipfile.ZipFile(wheel).open(name) as fh:
            text = fh.read().decode()
        assert not any(marker in text for marker in STUDY_MARKERS[1:]), f"{name} reads the project's data folder"


def test_the_floor_plan_in_the_docs_names_every_layer_entry():
    """docs/architecture.md draws LAYERS: every package or module of the list is named on its row's line."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    plan = text.split("```text", 1)[1].split("```", 1)[0]
    rows: dict[int, str] = {}
    current = None
    for line in plan.splitlines():
        if line.strip()[:1].isdigit():  # " 6  comparison  bench/ ...": a layer's row
            current = int(line.split()[0])
            rows[current] = line
        elif current is not None and line.startswith(" " * 5):  # its continuation lines
            rows[current] += " " + line.strip()
        else:
            current = None
    assert sorted(rows) == list(range(len(LAYERS))), "one numbered row per layer, lowest first"
    for index, prefixes in enumerate(LAYERS):
        row = rows[index]
        for prefix in prefixes:
            short = prefix.rpartition(".")[2] if prefix != "ssl_featurizer" else "ssl_featurizer"
            is_package = (PACKAGE / short).is_dir() if prefix != "ssl_featurizer" else False
            assert (f"{short}/" if is_package else short) in row, f"layer {index} row does not name {prefix}"


def test_torch_geometric_is_neither_required_nor_imported_outside_the_sevennet_adapter():
    """torch-geometric is not a requirement (its import alone costs seconds per process: every CLI call, every Dask
    worker): no module of the library imports it, except the SevenNet adapter, whose own package needs it."""
    import tomllib

    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not any(r.startswith("torch-geometric") for r in requires)
    importers = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n.split(".")[0] == "torch_geometric" for n in names):
                importers.append(path.relative_to(ROOT).as_posix())
    assert importers == ["ssl_featurizer/models/sevennet.py"]
