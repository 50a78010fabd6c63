"""The layering of ../shared/DESIGN.md, import by import (function-level imports included): inference
runs without Lightning, Hydra, training or evaluation code; the runtimes sit under both export and
inference; metrics and losses use no model code; and no two packages of vsr import each other, however
indirectly."""

import ast
from collections import defaultdict
from pathlib import Path

import pytest

VSR = Path(__file__).resolve().parents[1] / "vsr"
RULES = {
    "inference": ("lightning", "pytorch_lightning", "hydra", "vsr.training", "vsr.evaluation", "vsr.apps"),
    "runtimes": ("lightning", "pytorch_lightning", "hydra", "vsr.inference", "vsr.export", "vsr.training",
                 "vsr.evaluation", "vsr.apps"),
    "metrics": ("vsr.models", "vsr.training", "vsr.inference", "lightning"),
    "losses": ("vsr.models", "vsr.training", "vsr.inference", "lightning"),
}


def imported_modules(file: Path) -> list[tuple[int, str]]:
    """Every module `file` imports, at any depth of the file (line, dotted name)."""
    found = []
    for node in ast.walk(ast.parse(file.read_text(), str(file))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module))
    return found


@pytest.mark.parametrize("package", RULES)
def test_package_imports_stay_in_their_layer(package):
    forbidden = RULES[package]
    offending = [f"{file.relative_to(VSR.parent)}:{line} imports {name}"
                 for file in sorted((VSR / package).rglob("*.py"))
                 for line, name in imported_modules(file)
                 if any(name == f or name.startswith(f + ".") for f in forbidden)]
    assert not offending, "\n".join(offending)


def test_the_walk_sees_function_level_imports(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from vsr.models.alignment import SpyNet\n    import lightning\n")
    assert imported_modules(source) == [(2, "vsr.models.alignment"), (3, "lightning")]


def package_of(file: Path) -> str:
    """`vsr/inference/video.py` -> "inference"; top-level modules (`vsr/ops.py`) are their own package."""
    return file.relative_to(VSR).parts[0].removesuffix(".py")


def package_imports() -> dict[str, dict[str, list[str]]]:
    """package -> {other package it imports: [file:line, ...]}."""
    graph: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for file in sorted(VSR.rglob("*.py")):
        for line, name in imported_modules(file):
            parts = name.split(".")
            if parts[0] == "vsr" and len(parts) > 1 and parts[1] != package_of(file):
                graph[package_of(file)][parts[1]].append(f"{file.relative_to(VSR.parent)}:{line}")
    return graph


def cycles(graph: dict) -> list[list[str]]:
    """The strongly connected groups of more than one package (Tarjan), each sorted."""
    index, low, stack, found = {}, {}, [], []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph.get(node, {}):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while not group or group[-1] != node:
                group.append(stack.pop())
            if len(group) > 1:
                found.append(sorted(group))

    for node in list(graph):
        if node not in index:
            visit(node)
    return found


def test_no_two_packages_import_each_other():
    graph = package_imports()
    report = []
    for group in cycles(graph):
        edges = [f"  {a} -> {b}: {', '.join(graph[a][b][:3])}" for a in group for b in group if b in graph[a]]
        report.append(f"cycle between {', '.join(group)}:\n" + "\n".join(edges))
    assert not report, "\n".join(report)


def test_the_cycle_finder_sees_a_cycle_through_three_packages():
    assert cycles({"a": {"b": []}, "b": {"c": []}, "c": {"a": []}, "d": {"a": []}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b": []}, "b": {}}) == []
