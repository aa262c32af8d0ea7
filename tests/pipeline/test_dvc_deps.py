"""dvc.yaml is honest: each stage's ``deps`` cover every project module its command can import.

For a stage whose ``cmd`` runs ``python -m PKG.MOD``, the import closure is computed statically with :mod:`ast`:
every ``import``/``from … import`` anywhere in a module (lazy imports inside functions included) that names a module
of ``aslfs``, ``stages`` or ``flows`` is followed. Importing a module runs its packages' ``__init__.py``, so those
count too, except inert ones (only a docstring and constant assignments: they cannot change behaviour). A dep on a
directory covers the modules under it. Computed from the tree as it is, so it stays right as modules move.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("aslfs", "stages", "flows")
MODULE_IN_CMD = re.compile(r"\bpython\s+-m\s+([\w.]+)")


def module_file(name: str) -> Path | None:
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def is_inert(tree: ast.Module) -> bool:
    """Only a docstring and constant assignments (``__version__ = "…"``)."""
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            continue
        return False
    return True


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def imported_modules(path: Path, module: str) -> set[str]:
    """Project modules named by the import statements of ``path`` (the module ``module``)."""
    names: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(_parse(path)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            names.add(target)
            names.update(f"{target}.{alias.name}" for alias in node.names)  # submodules imported by name
    return {n for n in names if n.split(".")[0] in PACKAGES}


def import_closure(entry: str) -> set[str]:
    """Repository-relative paths of the project modules that ``python -m entry`` can import."""
    seen: set[str] = set()
    files: set[str] = set()
    todo = [entry]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = module_file(name)
        if path is None:  # an attribute imported by name (``from m import f``), not a module
            continue
        parts = name.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # parent packages run first
        if path.name == "__init__.py" and is_inert(_parse(path)):
            continue
        files.add(path.relative_to(ROOT).as_posix())
        todo.extend(imported_modules(path, name))
    return files


def covered(path: str, deps: list[str]) -> bool:
    return any(path == dep or path.startswith(dep.rstrip("/") + "/") for dep in deps)


def dvc_stages() -> dict[str, dict]:
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    return {name: (body["do"] if "foreach" in body else body) for name, body in spec.items()}


def test_every_stage_runs_a_project_module():
    for name, stage in dvc_stages().items():
        match = MODULE_IN_CMD.search(stage["cmd"])
        assert match and module_file(match.group(1)), f"stage {name}: no project module in cmd {stage['cmd']!r}"


def test_closure_follows_lazy_and_package_imports():
    closure = import_closure("stages.train")
    # imported inside a function of the stage, then transitively by the trainer
    assert any(p.startswith("aslfs/training/") for p in closure)
    assert "aslfs/config.py" in closure and "aslfs/vocab.py" in closure
    assert "aslfs/__init__.py" not in closure  # inert: a docstring and __version__


def test_stage_deps_cover_their_import_closure():
    problems = []
    for name, stage in dvc_stages().items():
        entry = MODULE_IN_CMD.search(stage["cmd"]).group(1)
        deps = [str(d) for d in stage.get("deps", []) if "${" not in str(d)]
        missing = sorted(p for p in import_closure(entry) if not covered(p, deps))
        if missing:
            problems.append(f"stage {name} ({entry}) deps lack:\n" + "\n".join(f"  - {p}" for p in missing))
    assert not problems, "dvc.yaml deps omit modules the stage imports:\n" + "\n".join(problems)


def test_code_deps_exist():
    """A code dependency that names a deleted or moved module makes ``dvc repro`` stop on a missing dependency."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    stale = [f"{name}: {dep}" for name, spec in stages.items() for dep in (spec.get("do", spec).get("deps") or [])
             if dep.startswith(("aslfs/", "stages/", "flows/")) and not (ROOT / dep).exists()]
    assert not stale, stale
