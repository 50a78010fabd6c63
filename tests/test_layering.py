"""The layering of ../shared/DESIGN.md, import by import (function-level imports included): inference
runs without Lightning, Hydra, training or evaluation code; metrics and losses use no model code."""

import ast
from pathlib import Path

import pytest

VSR = Path(__file__).resolve().parents[1] / "vsr"
RULES = {
    "inference": ("lightning", "pytorch_lightning", "hydra", "vsr.training", "vsr.evaluation", "vsr.apps"),
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
