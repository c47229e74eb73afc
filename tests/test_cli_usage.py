"""The sqs-rpc command without SQS: the layout of its modules."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLI = ROOT / "sqs_rpc" / "_cli"


# -- module layout -----------------------------------------------------------------------------


def _cli_imports(path: Path) -> set[str]:
    """The sqs_rpc._cli modules that ``path`` imports (relative or absolute)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                names.add(node.module)
            elif node.level == 1:
                names.update(alias.name for alias in node.names)
            elif node.module and node.module.startswith("sqs_rpc._cli."):
                names.add(node.module.removeprefix("sqs_rpc._cli."))
    return names


def test_cli_modules_are_small_and_import_as_a_tree() -> None:
    modules = {path.stem: path for path in CLI.glob("*.py") if path.stem != "__init__"}
    for name, path in modules.items():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        assert lines <= 400, f"_cli/{name}.py has {lines} lines"
    graph = {name: _cli_imports(path) & set(modules) for name, path in modules.items()}
    assert not any("main" in imported for imported in graph.values())
    assert graph["errors"] == set()
    assert graph["common"] <= {"errors"}

    def reaches(start: str, target: str, seen: frozenset[str] = frozenset()) -> bool:
        return any(
            n == target or (n not in seen and reaches(n, target, seen | {n})) for n in graph[start]
        )

    assert not [name for name in graph if reaches(name, name)], graph
