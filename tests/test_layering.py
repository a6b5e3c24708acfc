"""The layers, read from the source with `ast` (issue 16): no import cycle between our modules; the
foundation imports nothing above it; tasks/ and blocks/ import neither flows/ nor the CLI; command
modules import neither each other nor main.py; and a function-local import of our own code only
where `LOCAL_IMPORTS_ALLOWED` says why.

    .venv/bin/python tests/test_layering.py [ROOT]   # prints the counts (cycles, local imports)
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tradeops.cli.main import COMMANDS, build_parser, command_module

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("tradeops", "flows", "tasks", "blocks", "deployments")

# The bottom layer: the ops store, errors, the clock, files, the store's migrations, the value
# checks tasks share with the config schema. It imports nothing of ours above it.
FOUNDATION = ("tradeops.store", "tradeops.errors", "tradeops.clock", "tradeops.files", "tradeops.migrations",
              "tradeops.config_values")
ABOVE_FOUNDATION = ("tradeops.cli", "flows", "tasks", "blocks", "deployments")
COMMAND_PACKAGE = "tradeops.cli.commands"

# Function-local imports of our own modules, by the module that holds them: why each stays local.
# (Loading by name with importlib, which this test does not see, is how tradeops.cli.main loads a
# command group's module and tradeops.store / tradeops.cli resolve their re-exports.)
LOCAL_IMPORTS_ALLOWED: dict[str, str] = {
    "tradeops.cli.common": "blocks, flow failure alerts, run reports and apply import Prefect (about 1 s): kept "
                           "off the snapshot path of `tradeops experiment|change` (bench/experiment_cli.py)",
    "tradeops.cli.config": "the schema's bounds and defaults come from tasks' thresholds and the statistics "
                           "settings (numpy, scipy): loaded when a file is validated, not by every command",
    "tradeops.cli.commands.experiment": "`experiment evaluate` alone needs scipy, pandas and the report's plots",
    "tasks.reporting": "tasks.metrics.push reaches tasks.reporting again through the metrics collector and "
                       "tasks.incidents: a top-level import is a cycle",
    "tasks.audit": "the package resolves its exports lazily, so the slice workers (tasks.audit.chunk_walk) "
                   "start without SQLAlchemy",
}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module of ours
    line: int
    local: bool  # inside a function body


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules(root: Path) -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            if "versions" in path.relative_to(root).parts:  # alembic revisions
                continue
            found[module_name(path, root)] = path
    return found


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The module of ours `name` is, or the innermost one that holds it."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> list[Import]:
    tree = ast.parse(path.read_text(), str(path))
    local_nodes = {id(node) for fn in ast.walk(tree) if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
                   for node in ast.walk(fn) if isinstance(node, (ast.Import, ast.ImportFrom))}
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for name in dict.fromkeys(names):
            target = _resolve(name, modules)
            if target is None or target == module:
                continue
            found.append(Import(module, target, node.lineno, id(node) in local_nodes))
    return found


def all_imports(root: Path = REPO) -> list[Import]:
    modules = project_modules(root)
    return [imp for module, path in modules.items() for imp in imports_of(module, path, modules)]


def cycles(imports: list[Import]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        graph.setdefault(imp.source, set()).add(imp.target)
        graph.setdefault(imp.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return sorted(components)


def _within(module: str, prefixes: tuple[str, ...] | str) -> bool:
    prefixes = (prefixes,) if isinstance(prefixes, str) else prefixes
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _describe(found: list[Import]) -> str:
    return "\n".join(f"  {i.source}:{i.line} imports {i.target}{' (in a function)' if i.local else ''}"
                     for i in found)


# -- the rules --------------------------------------------------------------------------------------

def test_no_import_cycle():
    found = cycles(all_imports())
    assert found == [], "import cycles:\n" + "\n".join("  " + " <-> ".join(c) for c in found)


def test_the_foundation_imports_nothing_above_it():
    bad = [i for i in all_imports() if _within(i.source, FOUNDATION) and _within(i.target, ABOVE_FOUNDATION)]
    assert bad == [], "the foundation imports upward:\n" + _describe(bad)


def test_tasks_and_blocks_import_neither_flows_nor_the_cli():
    bad = [i for i in all_imports() if _within(i.source, ("tasks", "blocks"))
           and _within(i.target, ("flows", "tradeops.cli", "deployments"))]
    assert bad == [], "tasks/ or blocks/ import upward:\n" + _describe(bad)


def test_command_modules_import_neither_each_other_nor_main():
    bad = [i for i in all_imports() if _within(i.source, COMMAND_PACKAGE) and i.source != COMMAND_PACKAGE
           and (_within(i.target, COMMAND_PACKAGE) and i.target != COMMAND_PACKAGE or i.target == "tradeops.cli.main")]
    assert bad == [], "command modules import each other or main.py:\n" + _describe(bad)


def test_function_local_imports_only_where_allowed():
    bad = [i for i in all_imports() if i.local and i.source not in LOCAL_IMPORTS_ALLOWED]
    assert bad == [], (f"{len(bad)} function-local import(s) of our own code outside LOCAL_IMPORTS_ALLOWED "
                       "(move them to the top of the module):\n" + _describe(bad))


def test_every_allowlist_entry_says_why_and_is_used():
    local_sources = {i.source for i in all_imports() if i.local}
    assert all(LOCAL_IMPORTS_ALLOWED.values()), "every allowlisted module says why"
    assert set(LOCAL_IMPORTS_ALLOWED) <= local_sources, set(LOCAL_IMPORTS_ALLOWED) - local_sources


def test_the_snapshot_path_loads_without_prefect():
    """`tradeops experiment|change` read the applied snapshot and must start fast: their modules and
    the flow registry they read load without Prefect (about 1 s); tests/test_experiment_lifecycle.py
    checks the whole commands."""
    modules = ("flows.registry", "tradeops.cli.commands.experiment", "tradeops.cli.commands.change")
    probe = f"import sys, {', '.join(modules)}; print(sorted(m for m in ('prefect', 'alembic') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", f"{', '.join(modules)} load {done.stdout.strip()}"


def test_every_command_module_has_add_arguments_and_run():
    for name in COMMANDS:
        module = command_module(name)
        assert callable(module.add_arguments) and callable(module.run), name
    assert build_parser() is not None  # every group's arguments, together


if __name__ == "__main__":
    root = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else REPO
    imports = all_imports(root)
    local = [i for i in imports if i.local]
    top_cycles = cycles([i for i in imports if not i.local])
    every_cycle = cycles(imports)
    print(f"{root}: {len(project_modules(root))} modules, {len(imports)} project imports, "
          f"{len(local)} function-local ({len({i.source for i in local})} modules)")
    print(f"import cycles (strongly connected groups): {len(every_cycle)} counting function-local imports, "
          f"{len(top_cycles)} top-level only")
    for component in every_cycle:
        print("  " + " <-> ".join(component))
