"""The shape of the code, checked: imports point down (no cycles), the core imports no stage, only the
CLI prints, and files and functions stay readable. Run alone with

    python -m pytest tests/test_architecture.py

Layers, bottom to top (docs/architecture.md draws them):
  core        memo/                  config, data, store, streams, splits, metrics, crossval, models, ...
  stages      features/ rationales/ baselines/ llm_fusion/
  submission  submission/            runs, run files
  evaluation  evaluation/            model comparison, run evaluation, ablation, report
  samplekit   samplekit/             sample dataset, tiny models, the demo
  api         memo/api.py            the Python API (memo.open), beside the CLI and under it
  cli         cli/                   the only module that prints
A module may import its own layer or any layer below; never above.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["core", "stages", "submission", "evaluation", "samplekit", "api", "cli"]
LAYER_OF_PACKAGE = {
    "memo": "core",
    "memo.api": "api",  # a module of the root folder, a layer of its own: it calls every stage
    "memo.features": "stages",
    "memo.rationales": "stages",
    "memo.baselines": "stages",
    "memo.llm_fusion": "stages",
    "memo.submission": "submission",
    "memo.evaluation": "evaluation",
    "memo.samplekit": "samplekit",
    "memo.cli": "cli",
}
# upward imports that are part of the design, each with its reason
ALLOWED_UP = {
    (
        "memo.models",
        "memo.samplekit.tiny_models",
    ): "`tiny:vit` and friends are model names every stage accepts; the kit builds them on first use",
    ("memo.__main__", "memo.cli"): "`python -m memo` is the CLI",
    ("memo", "memo.api"): "the package root names the Python API (memo.open) and imports it on first use",
}
# imports that run only when an attribute is first used (PEP 562 `__getattr__` of the package root), after
# every module has loaded: checked for their direction, never part of an import-time circle
LAZY = {("memo", "memo.api")}
MAX_FILE_LINES = 600
MAX_FUNCTION_LINES = 80
# a comment with these words, just above a longer function, says why it is one piece
WHOLE = "reads better whole"


def _modules() -> dict[str, Path]:
    """Every module of the memo namespace -> its file, from pyproject's package-dir (one folder per
    package)."""
    dirs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    out = {}
    for package, folder in dirs.items():
        for f in sorted((ROOT / folder).glob("*.py")):
            out[package if f.stem == "__init__" else f"{package}.{f.stem}"] = f
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """memo modules `name` imports anywhere in its file (top level or inside functions), with the packages
    whose __init__ that import runs."""
    tree = ast.parse(path.read_text())
    package = name if path.stem == "__init__" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        for t in targets:
            parts = t.split(".")
            named = next(
                (".".join(parts[:i]) for i in range(len(parts), 0, -1) if ".".join(parts[:i]) in MODULES),
                None,
            )
            if named is None or named == name:
                continue
            found.add(named)  # memo.a.b.Symbol -> memo.a.b
            # importing memo.a.b runs the __init__ of memo.a too, unless memo.a is this module's own ancestor
            # (Python has initialised it before this module runs)
            found |= {p for p in _ancestors(named) if p != name and not name.startswith(p + ".")}
    return found


def _ancestors(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts)) if ".".join(parts[:i]) in MODULES]


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _layer(module: str) -> str:
    package = max((p for p in LAYER_OF_PACKAGE if module == p or module.startswith(p + ".")), key=len)
    return LAYER_OF_PACKAGE[package]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_the_checker_sees_the_whole_namespace():
    assert {
        "memo.config",
        "memo.cli.commands",
        "memo.features.base",
        "memo.evaluation.compare",
        "memo.samplekit.tiny_models",
    } <= set(MODULES)
    assert "memo.crossval" in GRAPH["memo.submission.runs"]  # a plain import is an edge
    # `from memo.features.x import y` runs memo.features' __init__ too
    assert "memo.features" in GRAPH["memo.rationales.generate"]


def test_no_import_cycle():
    at_import = {m: {d for d in deps if (m, d) not in LAZY} for m, deps in GRAPH.items()}
    assert _cycles(at_import) == [], "modules that import each other (directly or around a circle)"


def test_the_checker_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_imports_point_down():
    up = [
        f"{m} ({_layer(m)}) imports {d} ({_layer(d)})"
        for m, deps in GRAPH.items()
        for d in sorted(deps)
        if LAYERS.index(_layer(d)) > LAYERS.index(_layer(m))
        and not any(m == a and (d == b or b.startswith(d + ".")) for a, b in ALLOWED_UP)
    ]
    assert up == []


@pytest.mark.parametrize("name", [m for m in MODULES if _layer(m) != "cli" and m != "memo.__main__"])
def test_library_modules_neither_print_nor_use_the_cli(name):
    tree = ast.parse(MODULES[name].read_text())
    prints = [
        n.lineno
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "print"
    ]
    typer = [
        n.lineno
        for n in ast.walk(tree)
        if isinstance(n, (ast.Import, ast.ImportFrom))
        and "typer" in ([a.name for a in n.names] if isinstance(n, ast.Import) else [n.module or ""])
    ]
    assert not prints and not typer, (
        f"{MODULES[name]}: print at lines {prints}, typer at {typer}; say it with memo.progress.say"
    )


def test_files_and_functions_stay_readable():
    long_files = [
        f"{p.relative_to(ROOT)} ({n} lines)"
        for p in MODULES.values()
        if (n := len(p.read_text().splitlines())) > MAX_FILE_LINES
    ]
    long_functions = []
    for p in MODULES.values():
        lines = p.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                size = node.end_lineno - first + 1
                said_why = any(
                    WHOLE in lines[i] for i in range(max(0, first - 4), min(len(lines), node.lineno + 3))
                )
                if size > MAX_FUNCTION_LINES and not said_why:
                    long_functions.append(f"{p.relative_to(ROOT)}:{node.lineno} {node.name} ({size} lines)")
    assert long_files == [] and long_functions == []


def test_every_source_folder_is_a_package_of_the_wheel():
    """A folder of Python files under a package-dir folder works in the editable install and is
    silently missing from the wheel unless pyproject lists it in `packages` (.ci/wheel_check builds
    the wheel and imports every module from it)."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    assert set(setuptools["package-dir"]) <= listed
    unlisted = [
        str(sub.relative_to(ROOT))
        for folder in setuptools["package-dir"].values()
        for sub in (ROOT / folder).rglob("*")
        if sub.is_dir() and any(sub.glob("*.py")) and "__pycache__" not in sub.parts
    ]
    assert unlisted == [], f"folders of modules that the wheel leaves out: {unlisted}"
