import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / 'ltc_pyg'


def _subpackage_imports() -> dict[str, set[str]]:
    r"""Subpackage -> the other subpackages its modules import (anywhere in
    the file, ``TYPE_CHECKING`` blocks included)."""
    edges: dict[str, set[str]] = {}
    for path in PACKAGE.rglob('*.py'):
        parts = path.relative_to(PACKAGE).parts
        if len(parts) < 2:
            continue
        targets = edges.setdefault(parts[0], set())
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = node.module.split('.')
                if names[0] == 'ltc_pyg' and len(names) > 1:
                    targets.add(names[1])
    return {name: targets - {name} for name, targets in edges.items()}


def test_subpackages_import_each_other_without_cycles():
    edges = _subpackage_imports()
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"import cycle: {' -> '.join(path + (name,))}"
        if name in done:
            return
        for target in edges.get(name, ()):
            visit(target, path + (name,))
        done.add(name)

    for name in edges:
        visit(name, ())
    assert 'proposals' not in edges['cluster']
    # Forward only: proposals are built before anything is merged.
    assert 'cluster' not in edges['proposals']
