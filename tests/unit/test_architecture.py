"""The package's shape: no import cycles inside ``src/mentor`` (read from the source, every
import counted -- module level and inside functions -- except ``if TYPE_CHECKING:`` blocks),
and ``import mentor`` registers every component that any of its modules registers, so the
Python API accepts everything a recipe accepts."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "mentor"


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = ["mentor", *path.relative_to(PACKAGE).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of the package that ``name`` imports. An import of a package's submodule
    also runs the package's ``__init__``; those edges to the importer's own ancestors are
    left out (every module imports its parents)."""
    base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()

    def add(target: str) -> None:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target and target != name and not name.startswith(target + "."):
            found.add(target)

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                for c in child.orelse:
                    visit(c)
                continue
            if isinstance(child, ast.Import):
                for alias in child.names:
                    add(alias.name)
            elif isinstance(child, ast.ImportFrom):
                mod = (".".join(base[:len(base) - child.level + 1]
                                + ([child.module] if child.module else []))
                       if child.level else child.module or "")
                for alias in child.names:
                    sub = f"{mod}.{alias.name}"
                    add(sub if sub in modules else mod)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {m: imports_of(m, p, modules) for m, p in modules.items()}


def test_no_import_cycle_inside_the_package():
    cycles = import_cycles(_graph())
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_the_cycle_finder_finds_cycles(tmp_path):
    """The check can fail: a two-module cycle, a three-module ring and a lazy import inside
    a function are found; an import under TYPE_CHECKING and a parent package are not."""
    graph = {"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"e"}, "e": {"c"}, "f": {"a"}}
    assert sorted(import_cycles(graph)) == [["a", "b"], ["c", "d", "e"]]
    modules = {"mentor": PACKAGE / "__init__.py", "mentor.x": Path("x.py"),
               "mentor.y": Path("y.py")}
    tree = ("from __future__ import annotations\nfrom typing import TYPE_CHECKING\n"
            "from . import y\nif TYPE_CHECKING:\n    from .z import Z\n"
            "def f():\n    from .x import g\n")
    probe = tmp_path / "w.py"
    probe.write_text(tree, encoding="utf-8")
    assert imports_of("mentor.w", probe, {**modules, "mentor.w": probe,
                                          "mentor.z": Path("z.py")}) == {"mentor.x", "mentor.y"}


_REGISTRIES = """
import importlib, json, pkgutil, sys
import mentor
from mentor import registry
kinds = {k: v for k, v in vars(registry).items() if isinstance(v, registry.Registry)}
before = {k: sorted(r.names()) for k, r in kinds.items()}
for m in pkgutil.walk_packages(mentor.__path__, "mentor."):
    if m.name.endswith("__main__"):
        continue
    importlib.import_module(m.name)
after = {k: sorted(r.names()) for k, r in kinds.items()}
print(json.dumps({"before": before, "after": after}))
"""


def test_import_mentor_registers_every_component():
    """`crop` and `identity` were registered only when `mentor.labels.views` was imported,
    so the Python API refused an augmentation that `mentor run` accepted."""
    proc = subprocess.run([sys.executable, "-c", _REGISTRIES], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(SRC), "MENTOR_NO_PLUGINS": "1"},
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    missing = {k: sorted(set(got["after"][k]) - set(got["before"][k])) for k in got["after"]}
    assert not any(missing.values()), f"registered only by a later import: {missing}"
    assert {"crop", "identity"} <= set(got["before"]["AUGMENTS"])


# reads of a third-party object's private state, not hooks of mentor's parts
_NOT_HOOKS = {("accel.py", "getattr(accelerator, name, None)")}


def test_the_engine_reads_parts_only_through_declared_hooks():
    """No ``getattr``/``hasattr`` in ``src/mentor/engine``: every optional hook is declared
    in :mod:`mentor.contracts` (TeacherHooks, RefinerHooks, UpdaterHooks, takes_labels)."""
    found = []
    for path in sorted((PACKAGE / "engine").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in ("getattr", "hasattr")):
                text = ast.unparse(node)
                if (path.name, text) not in _NOT_HOOKS:
                    found.append(f"{path.name}:{node.lineno}: {text}")
    assert not found, "hook probing in the engine: " + "; ".join(found)


SCREEN = 70  # lines: a function of the engine is read without scrolling


def long_functions(directory: Path, limit: int = SCREEN) -> list[str]:
    """``file:function (lines)`` for each function in ``directory`` over ``limit`` lines."""
    found = []
    for path in sorted(directory.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > limit:
                    found.append(f"{path.name}:{node.name} ({lines} lines)")
    return found


def test_the_engine_is_named_steps_that_each_fit_on_a_screen():
    """The loop is split into named steps (``engine/loop.py``: prepare, run an epoch, draw a
    batch's rows, make the batch, supervise, optimize, end the epoch, save, restore); no
    function of ``src/mentor/engine`` is longer than a screen."""
    assert not long_functions(PACKAGE / "engine")


def test_the_length_check_finds_a_long_function(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(SCREEN))
    (tmp_path / "long.py").write_text(f"def one_long_loop():\n{body}\n")
    (tmp_path / "short.py").write_text("def short():\n    return 1\n")
    assert long_functions(tmp_path) == [f"long.py:one_long_loop ({SCREEN + 1} lines)"]


# what only a classification engine would do: an arg-max or class count, a class-count
# parameter, a split's labels indexed directly, a model called directly
_CLASS_CALLS = {"argmax", "bincount", "cross_entropy", "one_hot"}
# (file, code) that is not about classes: the most common admitted pseudo-label's count
_NOT_CLASSES = {("telemetry.py", "counts.argmax()")}


def class_knowledge(directory: Path) -> list[str]:
    """``file:line: code`` for each place in ``directory`` that knows the task is
    classification instead of asking the task adapter."""
    found = []
    for path in sorted(directory.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            hit = None
            if isinstance(node, ast.Call):
                f = node.func
                name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
                if name in _CLASS_CALLS:
                    hit = node
            elif isinstance(node, ast.arg) and node.arg == "num_classes":
                hit = node
            elif isinstance(node, ast.Name) and node.id == "num_classes":
                hit = node
            elif (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute)
                  and node.value.attr in ("y", "y_val", "weak_y")):
                hit = node
            if hit is not None:
                text = ast.unparse(hit) if not isinstance(hit, ast.arg) else hit.arg
                if (path.name, text) not in _NOT_CLASSES:
                    found.append(f"{path.name}:{hit.lineno}: {text}")
    return found


def test_nothing_in_the_engine_knows_classes():
    """The engine asks the task adapter (``contracts.TaskAdapter``: forward, take, hide,
    pseudo_labels, same, predict, score) for everything about labels and outputs: no arg-max,
    class count, ``num_classes`` or direct indexing of a split's labels in
    ``src/mentor/engine``."""
    assert not class_knowledge(PACKAGE / "engine")


def test_the_class_check_finds_classification_code(tmp_path):
    (tmp_path / "feed.py").write_text(
        "def labels(d, idx, zt, num_classes):\n"
        "    return d.y[idx], zt.argmax(-1), torch.bincount(d.y, minlength=num_classes)\n")
    found = sorted(f.split(": ", 1)[1] for f in class_knowledge(tmp_path))
    assert found == sorted(["num_classes", "num_classes", "d.y[idx]", "zt.argmax(-1)",
                            "torch.bincount(d.y, minlength=num_classes)"]), found
