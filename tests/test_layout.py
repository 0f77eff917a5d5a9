"""The package's shape: no import cycles, no import up the pipeline's layers, modules and
functions short enough to read."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "sealft"
MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 500
# Modules that are mostly data (the demo world's phrase tables), exempt from the size limit.
DATA_TABLES = {"sealft.demo.world"}
# The pipeline's layers, lowest first: a module imports from its own layer or below, never
# above (config never imports selection; selection never imports a recipe).
LAYERS = [
    {"config", "io", "logs", "progress"},
    {"distributed", "data"},
    {"model", "runs", "scores"},
    {"eval"},
    {"selection"},
    {"sft"},
    {"report"},
    {"recipes"},
    {"demo", "api", "cli", "sealft"},
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every sealft module `name` imports, at module level or inside a function."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from pkg import mod` imports the module pkg.mod; `from mod import f`, mod.
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            ]
        else:
            continue
        found |= {t for t in targets if t in known and t != name}
    return found


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles():
    modules = _modules()
    graph = {name: _imports(name, path, set(modules)) for name, path in modules.items()}
    assert graph["sealft.recipes.experiment"] >= {"sealft.recipes.select", "sealft.runs"}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_no_function_is_longer_than_a_screen():
    long = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name} ({lines})")
    assert not long, long


def _layer(module: str) -> int:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "sealft"
    return next(i for i, layer in enumerate(LAYERS) if top in layer)


def _upward(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{a} -> {b}" for a, targets in graph.items() for b in targets if _layer(b) > _layer(a)
    )


def test_every_module_sits_in_a_layer_and_no_import_runs_up():
    modules = _modules()
    for name in modules:
        _layer(name)  # StopIteration names a module no layer holds
    graph = {name: _imports(name, path, set(modules)) for name, path in modules.items()}
    assert _upward(graph) == []
    # The check sees an arrow that runs up.
    assert _upward({"sealft.config.x": {"sealft.selection.y"}}) == [
        "sealft.config.x -> sealft.selection.y"
    ]


def test_no_module_is_over_the_size_limit():
    long = [
        f"{name} ({n} lines)"
        for name, path in _modules().items()
        if name not in DATA_TABLES
        and (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    ]
    assert not long, long
