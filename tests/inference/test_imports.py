"""rvm_export/inference/ imports without a circle, and no module takes a private name from another.

Read from the source with ``ast``, every import counted (a function's lazy import too), so a circle that only
a lazy import keeps from failing at import time is still one.
"""

import ast
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

import rvm_export.inference

PACKAGE = "rvm_export.inference"
FOLDER = Path(rvm_export.inference.__file__).parent


def imports(path: Path) -> List[Tuple[str, List[str]]]:
    """(module, names taken from it) for every import in the file, relative ones resolved."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = PACKAGE.rsplit(".", node.level - 1)[0] if node.level > 1 else PACKAGE
                base = f"{parent}.{base}" if base else parent
            found.append((base, [alias.name for alias in node.names]))
    return found


def graph(folder: Path = FOLDER) -> Dict[str, Set[str]]:
    """Module name (``engine``, ``jobs``, ...) -> the package's modules it imports."""
    modules = {path.stem for path in folder.glob("*.py")} - {"__init__"}
    edges: Dict[str, Set[str]] = {name: set() for name in modules}
    for name in modules:
        for module, names in imports(folder / f"{name}.py"):
            if module.startswith(PACKAGE + "."):
                edges[name].add(module[len(PACKAGE) + 1 :].split(".")[0])
            elif module == PACKAGE:  # from rvm_export.inference import ray_backend
                edges[name] |= {n for n in names if n in modules}
        edges[name].discard(name)
    return edges


def find_cycle(edges: Dict[str, Set[str]]) -> Optional[List[str]]:
    """A circle as its modules in order (first repeated last), or None."""
    state: Dict[str, int] = {}  # 1: on the current path, 2: done
    path: List[str] = []

    def visit(node: str) -> Optional[List[str]]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_cycle_finder_finds_the_old_circle() -> None:
    old = {"convert": {"library"}, "library": {"convert", "ray_backend"}, "ray_backend": {"library"}}
    assert find_cycle(old) == ["convert", "library", "convert"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_inference_imports_form_no_circle() -> None:
    edges = graph()
    assert {"engine", "jobs", "library", "ray_backend", "cli", "convert"} <= set(edges)
    assert find_cycle(edges) is None, f"import circle: {' -> '.join(find_cycle(edges) or [])}"


def test_the_layers_import_downwards() -> None:
    """engine < jobs < ray_backend, library < cli < convert: each module imports only those below it."""
    edges = graph()
    assert not edges["engine"] & {"jobs", "library", "ray_backend", "cli", "convert"}
    assert not edges["jobs"] & {"library", "ray_backend", "cli", "convert"}
    assert not edges["ray_backend"] & {"library", "cli", "convert"}
    assert not edges["library"] & {"cli", "convert"}
    assert "convert" not in set().union(*edges.values())  # the public interface: nothing inside imports it


def test_no_private_name_is_imported_across_modules() -> None:
    offenders = []
    for path in sorted(FOLDER.glob("*.py")):
        for module, names in imports(path):
            if module.startswith("rvm_export") or module in ("model", "inference", "inference_utils"):
                offenders += [f"{path.name}: from {module} import {n}" for n in names if n.startswith("_")]
    assert offenders == []
