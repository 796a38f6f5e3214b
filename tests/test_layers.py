"""The package's structure, checked: imports only go down, no import cycle anywhere, the
report and grid validation never need torch, and the registries' catalogues match the
classes. The layer rule lives here, once; docs/design.md explains it."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("transformer", "ablations", "benchmarks")

# Lowest first. A module may import modules of its own layer or of a lower one, never of a
# higher one. A module belongs to the longest prefix listed.
LAYERS = [
    ["transformer"],                                     # the model core
    ["ablations.selector", "ablations.plugins", "ablations.measure", "ablations.procs",
     "ablations.store"],                                 # rules, the disk format
    ["ablations.tasks"],
    ["ablations.config", "ablations.posthoc.spec",
     "ablations.metric_names"],                          # run configs, specs, metric names
    ["ablations.report", "ablations.explore"],            # stored files -> tables, pages
    ["ablations.training"],                              # one run (Lightning)
    ["ablations.posthoc"],                               # trained weights, scored again
    ["ablations.grid"],                                  # many runs
    ["ablations.listing", "ablations.catalogue", "ablations.cli", "ablations.__main__",
     "ablations.reference", "ablations.config_command",
     "ablations", "benchmarks"],                         # commands
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module of ours this file imports, at any depth (function-level too)."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            for a in node.names:             # `from pkg import module` imports the module
                out.add(f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base)
    return {m for m in out if m.split(".")[0] in PACKAGES}


MODULES = {module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
GRAPH = {m: imports(p) for m, p in MODULES.items()}


def layer(module: str) -> int:
    best, found = -1, None
    for i, names in enumerate(LAYERS):
        for prefix in names:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, found = len(prefix), i
    assert found is not None, f"{module} is in no layer: add it to LAYERS"
    return found


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_only_go_down(module):
    up = [m for m in GRAPH[module] if layer(m) > layer(module)]
    assert not up, f"{module} (layer {layer(module)}) imports a higher layer: {up}"


def test_no_import_cycle():
    """Tarjan's strongly connected components over every module of the package."""
    index, low, stack, on, cycles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in GRAPH.get(v, ()):
            if w not in MODULES or w == v:
                continue
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
                cycles.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in MODULES:
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


BLOCK = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('torch', 'lightning'):
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
"""


def test_report_and_grid_validation_need_no_torch(tmp_path):
    """With torch and Lightning unimportable: the report's command module, grid
    validation of every shipped grid, `ablate list` and the report of a committed grid
    (tables, plots, verdicts, README)."""
    import shutil
    results = tmp_path / "results"
    shutil.copytree(ROOT / "results" / "ffn", results / "ffn")
    code = BLOCK + f"""
import ablations.report.command, ablations.listing
from ablations import grid
for path in sorted(grid.SHIPPED.glob('*.yaml')):
    grid.load(path)
from ablations.cli import main
assert main(['list']) == 0
assert main(['report', '--results', {str(results)!r}, '--no-explainers', '-q']) == 0
assert 'torch' not in sys.modules and 'lightning' not in sys.modules
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr[-3000:]


def test_catalogues_match_the_classes():
    """The torch-free catalogues (transformer/registry.py) equal what the classes
    declare; regenerate with `python -m ablations.catalogue`."""
    code = ("import json, sys; from ablations.catalogue import built_in, render; "
            "print(json.dumps({str(p): render(e) for p, e in built_in().items()}))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    for path, text in json.loads(done.stdout).items():
        assert Path(path).read_text() == text, (
            f"{path} is stale: run `python -m ablations.catalogue` and commit it")
