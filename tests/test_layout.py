"""The package's layering rules, checked on its source.

No module of fastlogit imports another module's private (``_``-prefixed)
names: what two modules share is promoted to a public name in its one home
(see docs/architecture.md).  Package-private *modules* (``_validation``,
``_objective``, ...) are imported by their public names only.
"""
from __future__ import annotations

import ast
from pathlib import Path

import fastlogit

PACKAGE = Path(fastlogit.__file__).resolve().parent

# (module, private name) imports still allowed, each with the reason.
ALLOWED = {
    # The compiled extension: its module name is private, its functions are the kernels.
    ("fastlogit", "_kernels"),
}


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _module_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def violations() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        here = _module_of(path)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        module_aliases = {}  # local name -> fastlogit module it stands for
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                    and node.module.split(".")[0] == "fastlogit":
                for alias in node.names:
                    if _private(alias.name) and (node.module, alias.name) not in ALLOWED:
                        found.append(f"{here}: from {node.module} import {alias.name}")
                    module_aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("fastlogit") and alias.asname:
                        module_aliases[alias.asname] = alias.name
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in module_aliases and _private(node.attr)):
                owner = module_aliases[node.value.id]
                if owner != here and (owner, node.attr) not in ALLOWED:
                    found.append(f"{here}: {node.value.id}.{node.attr} (of {owner})")
    return found


def test_no_module_imports_another_modules_private_names():
    assert violations() == []


def test_the_check_finds_a_private_import(tmp_path, monkeypatch):
    # Negative control: the checker must see the two ways of reaching a private name.
    fake = tmp_path / "fastlogit"
    fake.mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "a.py").write_text("from fastlogit.b import _helper\n"
                               "from fastlogit import b as mod\n"
                               "x = mod._other\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    assert violations() == ["fastlogit.a: from fastlogit.b import _helper",
                            "fastlogit.a: mod._other (of fastlogit.b)"]


def test_modules_stay_small():
    # One cohesive thing may be longer; name it here with the reason.
    longer = {}
    sizes = {p.relative_to(PACKAGE).as_posix(): len(p.read_text(encoding="utf-8").splitlines())
             for p in PACKAGE.rglob("*.py")}
    mine = ["cli.py", "scoring.py", "training_table.py", "demo.py", "model_io.py", "_api.py",
            "_validation.py"] + [k for k in sizes if k.startswith(("io/", "dask/"))]
    too_long = {k: sizes[k] for k in mine if sizes[k] > longer.get(k, 520)}
    assert too_long == {}
