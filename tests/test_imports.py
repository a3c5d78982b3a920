"""The package's layout: no import cycle among xpnet's modules, the loop below the model,
and modules of one concept (none over 400 lines, the lab's math about 200)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import xpnet

PACKAGE = Path(xpnet.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imported(path: Path) -> set[str]:
    """The xpnet modules ``path`` imports, anywhere in it (in functions too), but for
    those under ``if TYPE_CHECKING``."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and not child.level:
                for alias in child.names:  # `from package import module` imports the module
                    full = f"{child.module}.{alias.name}"
                    found.add(full if full in MODULES else child.module)
            visit(child)

    visit(ast.parse(path.read_text()))
    return {name for name in found if name in MODULES} - {module_name(path)}


def test_no_module_imports_one_that_imports_it_back():
    graph = {name: imported(path) for name, path in MODULES.items()}
    assert graph["xpnet.neural_net"] >= {"xpnet.training", "xpnet.functional"}  # it sees them
    done: set[str] = set()

    def cycle_from(name: str, path: list[str]) -> list[str] | None:
        if name in path:
            return [*path[path.index(name) :], name]
        if name in done:
            return None
        for other in sorted(graph[name]):
            if found := cycle_from(other, [*path, name]):
                return found
        done.add(name)
        return None

    for name in sorted(graph):
        cycle = cycle_from(name, [])
        assert cycle is None, f"an import cycle: {' -> '.join(cycle)}"


def test_the_training_loop_does_not_import_the_model():
    code = "import xpnet.training, sys; print('xpnet.neural_net' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_no_module_is_over_400_lines():
    sizes = {name: len(path.read_text().splitlines()) for name, path in MODULES.items()}
    assert sizes["xpnet.neural_net"] > 100  # it reads the files it checks
    assert sizes["xpnet.functional"] <= 210, "the lab's math reads in one sitting"
    assert {name: n for name, n in sizes.items() if n > 400} == {}
