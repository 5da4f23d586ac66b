"""The import graph of ``src/captune``, read with ``ast`` (imports inside functions included).

Layers: ``models`` and ``metrics`` are libraries the stages use, so they import nothing from the
stages above them; ``report`` has no import cycle; subpackages import each other without cycles;
the demo's training code is loaded only by ``captune demo build-base``; and the third-party imports
match the dependencies pyproject.toml declares, both ways.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
PACKAGE = SRC / "captune"

DEMO_TRAINING = {"captune.demo.build", "captune.demo.captioner", "captune.demo.clip", "captune.demo.vision"}
"""The code that trains the shipped demo models (``captune demo build-base``)."""

NOT_INSTALLED_HERE = {"bitsandbytes": "bitsandbytes", "open_clip": "open_clip_torch", "pillow_heif": "pillow-heif"}
"""Import name -> distribution for extras this environment may lack (so metadata cannot map them)."""


@dataclass(frozen=True)
class Import:
    module: str
    """The importing module, e.g. ``captune.models.loading``."""
    target: str
    """The imported module as written, resolved to absolute, e.g. ``captune.demo.shipped``."""
    line: int
    top_level: bool
    """False for an import inside a function or class (run only when that code runs)."""


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports_of(path: Path) -> list[Import]:
    module, tree = module_name(path), ast.parse(path.read_text(), str(path))
    nested = {id(n) for top in tree.body for n in ast.walk(top)
              if isinstance(top, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n is not top}
    nested |= {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
               for n in ast.walk(f) if n is not f}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node, module, path.name == "__init__.py")
            # ``from captune.x import y`` imports the module captune.x.y when there is one, else captune.x
            subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules()]
            targets = subs + ([base] if len(subs) < len(node.names) else [])
        else:
            continue
        found += [Import(module, t, node.lineno, id(node) not in nested) for t in targets]
    return found


@cache
def modules() -> frozenset[str]:
    return frozenset(module_name(p) for p in PACKAGE.rglob("*.py")) | {
        module_name(d / "__init__.py") for d in PACKAGE.rglob("*") if d.is_dir() and any(d.glob("*.py"))}


@cache
def all_imports() -> tuple[Import, ...]:
    return tuple(i for p in sorted(PACKAGE.rglob("*.py")) for i in _imports_of(p))


def internal() -> list[Import]:
    return [i for i in all_imports() if i.target in modules()]


def subpackage(module: str) -> str:
    """``captune.models.loading`` -> ``models``; a top-level module (``captune.io``) is its own name."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def forbidden(layer: str, above: set[str]) -> list[str]:
    return [f"{i.module} line {i.line} imports {i.target}" for i in internal()
            if subpackage(i.module) == layer and subpackage(i.target) in above]


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
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

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(found)


def graph(key) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for i in internal():
        a, b = key(i.module), key(i.target)
        if a is not None and b is not None and a != b:
            edges.setdefault(a, set()).add(b)
    return edges


def test_the_reader_sees_function_level_and_relative_imports():
    targets = {(i.target, i.top_level) for i in all_imports() if i.module == "captune.models.loading"}
    assert ("captune.errors", True) in targets
    assert ("captune.models.family", False) in targets  # imported inside load_captioner
    assert "captune.models" in modules() and "captune.io" in modules()


def test_models_import_nothing_from_the_stages_above_them():
    assert forbidden("models", {"demo", "train", "evaluate", "report", "cli"}) == []


def test_metrics_import_nothing_from_the_stages():
    # model-based metrics (perplexity under a captioner) may use captune.models and captune.generate
    assert forbidden("metrics", {"train", "evaluate", "report", "demo", "cli"}) == []


def test_report_modules_have_no_import_cycle():
    report = graph(lambda m: m if m.startswith("captune.report.") else None)
    assert report, "no imports between report modules were found"
    assert cycles(report) == []


def test_no_cycle_between_subpackages():
    packages = graph(lambda m: subpackage(m) if m.startswith("captune.") else None)
    assert "models" in packages.get("train", set())  # the graph is not empty by accident
    assert cycles(packages) == []


def test_the_cycle_finder_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_demo_training_code_is_imported_only_when_it_runs():
    outside = [f"{i.module} line {i.line} imports {i.target} at module level" for i in internal()
               if i.target in DEMO_TRAINING and i.module not in DEMO_TRAINING and i.top_level]
    assert outside == []
    assert any(i.target == "captune.demo.build" and i.module.startswith("captune.cli") for i in internal())


def test_importing_captune_loads_no_torch_and_no_demo_training_code():
    watched = sorted(DEMO_TRAINING | {"torch"})
    code = f"import sys, captune, captune.models.registry; print(sorted(set(sys.modules) & set({watched!r})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def _normalize(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


def _requirement_name(spec: str) -> str:
    return _normalize(re.match(r"[A-Za-z0-9_.\-]+", spec.strip()).group(0))


def declared() -> tuple[set[str], set[str]]:
    """The core dependencies and those of every extra (read without tomllib, which Python 3.10 lacks)."""
    text = (ROOT / "pyproject.toml").read_text()
    core = re.search(r"^dependencies\s*=\s*\[(.*?)\]", text, re.DOTALL | re.MULTILINE).group(1)
    extras = re.search(r"^\[project\.optional-dependencies\]\n(.*?)(?:^\[|\Z)", text, re.DOTALL | re.MULTILINE).group(1)
    return _names(core), _names(extras)


def _names(block: str) -> set[str]:
    return {_requirement_name(d) for d in re.findall(r'"([^"]+)"', block)}


def third_party() -> dict[str, set[str]]:
    """Distribution name -> the modules that import it (stdlib, captune and __future__ left out)."""
    to_dist = packages_distributions()
    found: dict[str, set[str]] = {}
    for i in all_imports():
        top = i.target.split(".")[0]
        if not top or top in sys.stdlib_module_names or top in ("captune", "__future__"):
            continue
        dists = to_dist.get(top) or [NOT_INSTALLED_HERE.get(top, top)]
        for dist in dists:
            found.setdefault(_normalize(dist), set()).add(i.module)
    return found


def test_every_third_party_import_is_declared():
    core, extras = declared()
    undeclared = {d: sorted(m) for d, m in third_party().items() if d not in core | extras}
    assert undeclared == {}


def test_every_core_dependency_is_imported_somewhere():
    core, _ = declared()
    assert sorted(core - set(third_party())) == []


def test_the_dependency_check_maps_import_names_to_distributions():
    found = third_party()
    assert {"pillow", "pyyaml", "scikit-learn", "imagehash"} <= set(found)  # PIL, yaml, sklearn, imagehash
    assert "captune.data.near_duplicates" in found["imagehash"]
