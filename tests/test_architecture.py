"""The import directions of docs/ARCHITECTURE.md hold, and its tables list the rooms the tree has.

ROOMS and INSIDE mirror the doc's tables: a room (a top-level module or package of steelnb) may import of ours only
what its row names ("method.cluster": that module of a package alone); a module of method/, study/, detect/,
inspection/ or cli/ only the sibling modules its row names. Imports inside functions count as well.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "steelnb"
DOC = PACKAGE.parent / "docs" / "ARCHITECTURE.md"

ROOMS = {
    "errors": set(),
    "validation": {"errors"},
    "progress": set(),
    "runfolder": {"errors"},
    "metrics": set(),
    "data": {"errors", "progress"},
    "distributed": set(),
    "views": set(),
    "backbones": {"errors", "views", "progress"},
    "patches": {"views", "backbones"},
    "method": {"errors", "validation", "progress", "runfolder", "metrics", "data", "views", "backbones", "distributed"},
    "baselines": {"data", "views", "backbones", "patches", "metrics", "method.cluster"},
    "detect": {"errors", "validation", "progress", "runfolder", "metrics", "data", "backbones", "patches",
               "distributed", "method.runfiles", "method.predict"},
    "inspection": {"validation", "progress", "runfolder", "metrics", "data", "backbones", "patches", "method", "detect",
                   "plots", "profiles"},
    "profiles": {"backbones"},
    "plots": set(),
    "html_report": {"runfolder", "plots"},
    "study": {"data", "method", "baselines", "backbones", "metrics", "profiles", "plots", "detect", "inspection"},
    "cli": {"errors", "validation", "progress", "runfolder", "metrics", "data", "backbones", "method", "detect",
            "inspection", "profiles", "html_report", "distributed"},
}
INSIDE = {
    "inspection": {
        "config": set(), "crops": set(), "choice": set(), "evaluation": set(), "grouping": {"choice", "config"},
        "run": {"config", "crops", "evaluation", "grouping"},
    },
    "detect": {
        "config": {"decision", "position"}, "errors": set(), "scoring": {"decision"}, "decision": set(),
        "fusion": {"decision"}, "position": {"decision"}, "record": {"config", "decision"},
        "pile": {"config", "errors"}, "overlay": {"record", "scoring"},
        "rescore": {"scorers"}, "whiten": set(), "peers": {"decision"}, "discriminator": {"decision", "rescore"},
        "run": {"config", "decision", "discriminator", "errors", "fusion", "overlay", "peers", "pile", "position",
                "record", "rescore", "scorers", "scoring", "whiten"},
        "decide": {"config", "decision", "errors", "overlay", "pile", "record"},
    },
    "cli": {
        "__main__": {"main"}, "main": {"flags"}, "flags": set(), "data_info": {"flags"}, "runs": {"data_info", "flags"},
        "train": {"flags", "runs"}, "bench": {"flags"}, "predict": {"data_info", "flags", "runs"},
        "detect": {"flags", "runs"}, "inspect": {"detect", "flags", "runs"}, "decide": {"flags"}, "report": set(),
    },
    "method": {
        "cluster": set(), "heads": set(), "losses": set(), "optim": set(), "runfiles": {"cluster"},
        "config": {"cluster", "heads", "optim"},
        "inputs": {"config"},
        "model": {"cluster", "config"},
        "train": {"cluster", "config", "heads", "inputs", "losses", "model", "optim", "runfiles"},
        "predict": {"model"},
        "bench": {"config", "heads", "losses", "train"},
    },
    "study": {
        "notebook": set(), "paper": set(), "datasets": set(), "records": set(),
        "configs": {"datasets"},
        "tables": {"datasets", "paper"},
        "runs": {"configs", "datasets", "tables"},
        "figures": {"tables"},
        "readme": {"paper", "records", "tables"},
        "detection": {"configs", "datasets", "runs"},
    },
}


def _modules():
    """(dotted name, path) of every module of the package."""
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.with_suffix("").relative_to(PACKAGE.parent).parts
        yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


def _imports(module: str, path: Path) -> set[str]:
    """What `module` imports of ours, dotted without "steelnb." and relative imports resolved: `from ..method.cluster
    import cluster` in baselines/fixed.py gives "method.cluster.cluster"."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            stem = ".".join([*base, node.module] if node.module else base)
            names = [f"{stem}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {name.removeprefix("steelnb.") for name in names if name.startswith("steelnb.")}
    return found


def _room(name: str) -> str:
    return name.split(".")[0]


def _within(target: str, allowed: set[str]) -> bool:
    return any(target == a or target.startswith(f"{a}.") for a in allowed)


def test_every_room_of_the_tree_has_a_row():
    rooms = {_room(module.removeprefix("steelnb.")) for module, _ in _modules() if module != "steelnb"}
    assert rooms == set(ROOMS), "a room of the tree without a row (or a row without a room): add it here and to " \
                                "docs/ARCHITECTURE.md"
    for package, modules in INSIDE.items():
        assert {p.stem for p in (PACKAGE / package).glob("*.py")} - {"__init__"} == set(modules), package


def test_every_import_follows_the_documented_directions():
    wrong = []
    for module, path in _modules():
        if module == "steelnb":
            continue
        room = _room(module.removeprefix("steelnb."))
        wrong += [f"{module} imports steelnb.{target}" for target in sorted(_imports(module, path))
                  if not _within(target, ROOMS[room] | {room})]
    assert not wrong, "imports against docs/ARCHITECTURE.md:\n" + "\n".join(wrong)


def test_inside_method_and_study_every_module_imports_only_its_row():
    wrong = []
    for package, rows in INSIDE.items():
        for path in sorted((PACKAGE / package).glob("*.py")):
            if path.stem == "__init__":
                continue
            siblings = {t.split(".")[1] for t in _imports(f"steelnb.{package}.{path.stem}", path)
                        if _room(t) == package and "." in t}
            wrong += [f"{package}.{path.stem} imports {package}.{s}" for s in sorted(siblings - rows[path.stem])]
    assert not wrong, "imports against docs/ARCHITECTURE.md:\n" + "\n".join(wrong)


def _doc_tables() -> dict[str, dict[str, set[str]]]:
    """Each table of ARCHITECTURE.md (keyed "rooms", "method", "study"): first column -> its import column."""
    tables, current = {}, None
    for line in DOC.read_text().splitlines():
        heading = re.match(r"^#+ (?:Rooms|Inside `steelnb/(\w+)/`)$", line)
        if heading:
            current = tables.setdefault(heading.group(1) or "rooms", {})
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]] if line.startswith("| `") else []
        if current is not None and cells:
            key = re.sub(r"^`steelnb/|(\.py)?/?`$|^`", "", cells[0])
            imports = cells[-1]
            current[key] = set() if imports == "none" else {i.strip() for i in imports.split(",")}
    return tables


@pytest.mark.parametrize("table", ["rooms", "method", "study", "detect", "inspection", "cli"])
def test_the_architecture_doc_lists_the_same_rooms_and_imports(table):
    documented = _doc_tables()[table]
    expected = ROOMS if table == "rooms" else INSIDE[table]
    assert documented == expected


def test_every_module_of_the_cli_is_under_200_lines():
    """One command a module (docs/ARCHITECTURE.md, inside `steelnb/cli/`), each short enough to read at once."""
    lengths = {path.name: len(path.read_text().splitlines()) for path in (PACKAGE / "cli").glob("*.py")}
    assert len(lengths) > 2, "steelnb/cli/ is a package of one module a command"
    assert not {name: n for name, n in lengths.items() if n >= 200}, lengths
