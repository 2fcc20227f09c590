"""The layering, enforced: what each package of ours may import, and no import circle.

Read from the source tree (every import statement, lazy and TYPE_CHECKING ones included):
- `engine/` imports only itself and the standard library;
- `planner/` imports nothing of ours outside `planner/` (numpy and msgspec are its libraries)
  and opens no files;
- `dynosim/` never imports the TUI or Textual, except the entry point `dynosim/cli.py`;
- the Textual-free TUI modules (pacing, series, runner) import no Textual or Rich;
- no two modules of ours import each other, directly or around a longer circle;
- a module over 450 lines says why in its first line; the engine is one mypyc group.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from helpers import ROOT

PACKAGES = ("engine", "planner", "dynosim", "tui")
TUI_PURE = ("tui/pacing.py", "tui/series.py", "tui/runner.py")
# The one deliberate arrow up: the entry point starts the live view (lazily).
ENTRY_POINT = ("dynosim.cli", "tui.launch")


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def imports_of(path: Path) -> set[str]:
    """Absolute names of every module `path` imports."""
    tree = ast.parse(path.read_text(), str(path))
    here = module_name(path).split(".")
    if path.name != "__init__.py":
        here = here[:-1]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(here[: len(here) - node.level + 1] + ([base] if base else []))
            out.add(base)
            # `from pkg import mod` may name a submodule
            out.update(f"{base}.{a.name}" for a in node.names)
    return out


def ours(name: str) -> bool:
    return name.split(".")[0] in PACKAGES


def top(name: str) -> str:
    return name.split(".")[0]


# mypyc's own runtime: native int types (mypy_extensions) and unboxed vectors (librt.vecs).
MYPYC_RUNTIME = {"mypy_extensions", "librt"}


@pytest.mark.parametrize("path", sources("engine"), ids=lambda p: p.name)
def test_engine_imports_only_itself_and_the_standard_library(path: Path) -> None:
    bad = {n for n in imports_of(path)
           if top(n) != "engine" and top(n) not in sys.stdlib_module_names
           and top(n) not in MYPYC_RUNTIME}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize("path", sources("planner"), ids=lambda p: p.name)
def test_planner_imports_nothing_of_ours_but_itself(path: Path) -> None:
    allowed = {"planner", "numpy", "msgspec"}
    bad = {n for n in imports_of(path)
           if top(n) not in allowed and top(n) not in sys.stdlib_module_names}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"
    calls = [n for n in ast.walk(ast.parse(path.read_text()))
             if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "open"]
    assert not calls, f"{path.relative_to(ROOT)} opens files (line {calls[0].lineno})"


@pytest.mark.parametrize("path", sources("dynosim"), ids=lambda p: str(p.relative_to(ROOT)))
def test_dynosim_does_not_import_the_view(path: Path) -> None:
    if module_name(path) == ENTRY_POINT[0]:
        return
    bad = {n for n in imports_of(path) if top(n) in ("tui", "textual")}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize("rel", TUI_PURE)
def test_tui_pacing_layer_is_textual_free(rel: str) -> None:
    bad = {n for n in imports_of(ROOT / rel) if top(n) in ("textual", "rich")}
    assert not bad, f"{rel} imports {sorted(bad)}"


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for pkg in PACKAGES for p in sources(pkg)}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps = {n for n in imports_of(path) if n in modules and n != name}
        # importing a package's submodule runs the package's __init__: not an edge we count
        graph[name] = {d for d in deps if not name.startswith(d + ".")}
    graph[ENTRY_POINT[0]].discard(ENTRY_POINT[1])
    return graph


def test_no_import_circle() -> None:
    graph = import_graph()
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                circle = path[path.index(dep):] + [dep]
                pytest.fail("import circle: " + " -> ".join(circle))
            if dep not in state:
                visit(dep)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_the_contracts_see_every_package() -> None:
    graph = import_graph()
    assert {top(n) for n in graph} == set(PACKAGES)
    assert "planner.planner" in graph and "dynosim.outputs.report" in graph
    # a known edge is found, so an empty graph cannot pass the circle test
    assert "dynosim.outputs.report" in graph["dynosim.replay"]


MAX_LINES = 450
SIZE_REASON = "# Over 450 lines on purpose: "


@pytest.mark.parametrize("path", [p for pkg in PACKAGES for p in sources(pkg)],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_a_long_module_says_why_in_its_first_line(path: Path) -> None:
    text = path.read_text()
    if text.count("\n") <= MAX_LINES:
        return
    first = text.split("\n", 1)[0]
    assert first.startswith(SIZE_REASON) and len(first) > len(SIZE_REASON) + 10, (
        f"{path.relative_to(ROOT)} has {text.count(chr(10))} lines: split it, or give the "
        f"reason in its first line ({SIZE_REASON}...)")


def test_the_engine_compiles_as_one_mypyc_group() -> None:
    """Every engine module is one mypyc group (calls across them stay native C calls, so
    splitting a module costs no speed): setup.py compiles the whole folder, not in groups."""
    setup = (ROOT / "setup.py").read_text()
    assert 'glob.glob(os.path.join("engine", "*.py"))' in setup
    assert "separate" not in setup and "group_name" not in setup


def layout_rows() -> dict[str, str]:
    """The README's layout table: package -> the text of its row."""
    text = (ROOT / "README.md").read_text()
    table = text[text.index("\n## Layout"):]
    rows: dict[str, str] = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0].startswith("`") and cells[0].endswith("/`"):
            rows[cells[0].strip("`/")] = cells[1]
    return rows


def test_the_readme_layout_names_every_module() -> None:
    """Each module of engine/, planner/ and tui/, each top-level module and sub-folder of
    dynosim/ (and the modules of its inputs/ and outputs/ rooms) has its place in the table."""
    rows = layout_rows()
    missing = []
    for pkg in PACKAGES:
        for path in sources(pkg):
            rel = path.relative_to(ROOT / pkg)
            if path.name == "__init__.py":
                name = f"{rel.parent}/" if len(rel.parts) > 1 else ""
            elif pkg == "dynosim" and len(rel.parts) > 1 and rel.parts[0] not in (
                    "inputs", "outputs"):
                name = f"{rel.parts[0]}/"
            else:
                name = path.name
            if name and f"`{name}" not in rows[pkg]:  # `x.py` or `x.py` + `y.py`
                missing.append(f"{pkg}/{rel}")
    assert not missing, f"not in the README's layout table: {sorted(set(missing))}"
