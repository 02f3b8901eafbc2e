"""Release artefacts built from the checkout: the sdist and the manylinux wheel.

Both need the source checkout (skipped when fastlogit is tested as installed).
"""
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from conftest import PACKAGE_PARENT

ROOT = Path(PACKAGE_PARENT)
CHECKOUT = (ROOT / "setup.py").is_file() and (ROOT / "scripts" / "build_wheel.sh").is_file()
pytestmark = pytest.mark.skipif(not CHECKOUT, reason="needs the source checkout")


def git(*args) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout


def tracked_files() -> list[str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout")
    return [f for f in git("ls-files").splitlines() if (ROOT / f).is_file()]


def tree_listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def test_sdist_holds_every_tracked_file_and_no_build_product(tmp_path):
    pytest.importorskip("Cython")
    setuptools = pytest.importorskip("setuptools")
    if int(setuptools.__version__.split(".")[0]) < 77:
        pytest.skip("the metadata needs setuptools >= 77")
    files = tracked_files()
    copy = tmp_path / "src"
    for f in files:  # the working tree's files, so uncommitted changes count
        (copy / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, copy / f)
    before = tree_listing(copy)
    result = subprocess.run([sys.executable, "setup.py", "-q", "sdist", "-d", str(tmp_path / "dist")],
                            cwd=copy, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert tree_listing(copy) == before, "building the sdist changed the source tree"
    (archive,) = (tmp_path / "dist").glob("fastlogit-*.tar.gz")
    with tarfile.open(archive) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    # Everything tracked ships except the git configuration files.
    missing = sorted(f for f in files if f not in names and not f.startswith(".git"))
    assert not missing, f"missing from the sdist: {missing}"
    assert "docs/bench.png" in names and "fastlogit/src/fl_math.h" in names
    # A .c beside its .pyx is Cython's output; hand-written C (scripts/) is source.
    products = sorted(n for n in names if n.startswith("build/") or n.endswith((".so", ".pyc"))
                      or (n.endswith(".c") and n[:-2] + ".pyx" in names))
    assert not products, f"build products in the sdist: {products}"


def test_every_package_folder_is_declared():
    tomllib = pytest.importorskip("tomllib")
    from setuptools import find_namespace_packages
    find = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    declared = set(find_namespace_packages(str(ROOT), include=find["include"], exclude=find["exclude"]))
    folders = {str(p.parent.relative_to(ROOT)).replace(os.sep, ".")
               for p in (ROOT / "fastlogit").rglob("*.py") if "__pycache__" not in p.parts}
    assert folders <= declared, f"not shipped: {sorted(folders - declared)}"


@pytest.mark.slow  # about 2.5 minutes: an isolated build, auditwheel, two virtual environments
@pytest.mark.timeout(1200)
def test_build_wheel_script(tmp_path):
    if shutil.which("bash") is None or not sys.platform.startswith("linux"):
        pytest.skip("a manylinux wheel is built on Linux")
    tracked_files()
    status_before = git("status", "--porcelain", "--ignored")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHON"] = sys.executable
    result = subprocess.run(["bash", str(ROOT / "scripts" / "build_wheel.sh"), str(tmp_path)],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1100)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (wheel,) = tmp_path.glob("fastlogit-*.whl")
    assert re.search(r"-manylinux_\d+_\d+_(x86_64|aarch64)\.whl$", wheel.name), wheel.name
    assert len(list(tmp_path.glob("fastlogit-*.tar.gz"))) == 1
    assert "bundled libgomp is not" not in result.stdout
    assert "fastlogit.libs/libgomp" in result.stdout
    assert git("status", "--porcelain", "--ignored") == status_before, \
        "building the wheel changed the source tree"
