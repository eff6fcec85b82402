"""The layering the folders promise: data (tasks) <- engine and models (cl) <- strategies, with the
offline analysis on top; no import cycle anywhere."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("cl", "tasks", "strategies")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_imports() -> dict[str, set[str]]:
    """Every project module and the project modules it imports (at any depth of the file)."""
    modules = {module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            found |= {t for t in targets if t in modules}
        graph[name] = found - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(n):
        state[n] = "open"
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == "open":
                return stack[stack.index(m) :] + [m]
            if m not in state and (cycle := visit(m)):
                return cycle
        state[n] = "done"
        stack.pop()
        return None

    for n in sorted(graph):
        if n not in state and (cycle := visit(n)):
            return cycle
    return None


def test_no_import_cycle():
    graph = project_imports()
    assert len(graph) > 30  # the walk found the project
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph))}"


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_imports_run_one_way():
    graph = project_imports()
    for name, imports in graph.items():
        if name.startswith("tasks"):
            assert not {m for m in imports if not m.startswith("tasks")}, f"{name} imports {imports}"
        if not name.startswith("cl.analysis"):
            assert not {m for m in imports if m.startswith("cl.analysis")}, f"{name} imports the analysis"
        if name.startswith("cl.engine"):  # the engine knows the contract, not the strategies
            assert not {m for m in imports if m.startswith("strategies")}, f"{name} imports a strategy"
        if name.startswith("strategies"):  # strategies never reach the CLI or each other
            bad = {m for m in imports if m in ("cl.run", "cl.engine.build") or m.startswith("strategies")}
            assert not bad, f"{name} imports {bad}"


def test_importing_tasks_loads_neither_lightning_nor_the_engine():
    code = (
        "import sys, tasks, tasks.batching, tasks.prompts, tasks.packaged, tasks.files, tasks.hub, tasks.synthetic\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('lightning', 'pytorch_lightning', 'cl', 'strategies')]\n"
        "print(bad)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.strip() == "[]"
