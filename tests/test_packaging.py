"""What a newcomer meets before any math runs: importing an unbuilt checkout,
``python -m fastlogit`` and the version."""
import doctest
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import fastlogit
from conftest import PACKAGE_PARENT, run_python

PACKAGE_DIR = Path(fastlogit.__file__).resolve().parent


def _run_copy(args, cwd):
    """``python ARGS`` in ``cwd`` with nothing else on the path: ``-c``/``-m`` put
    ``cwd`` first on sys.path, so the copy there is the fastlogit imported.
    ``-S`` (no site-packages) keeps an editable install's import hook from
    redirecting ``fastlogit`` to its checkout; the check under test runs
    before fastlogit imports anything outside the standard library."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-S", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def _copy_without_extension(dest: Path) -> Path:
    """A copy of the package under test with no compiled module in it."""
    target = dest / "fastlogit"
    shutil.copytree(PACKAGE_DIR, target,
                    ignore=shutil.ignore_patterns("*.so", "*.pyd", "*.c", "__pycache__"))
    assert not list(target.glob("_kernels.*.so"))
    return target


def test_unbuilt_checkout_says_how_to_build(tmp_path):
    package = _copy_without_extension(tmp_path)
    (tmp_path / "setup.py").write_text("# marks a source checkout\n")
    result = _run_copy(["-c", "import fastlogit"], tmp_path)
    assert result.returncode == 1
    message = result.stderr[result.stderr.index("ImportError: "):]
    assert "compiled extension (fastlogit._kernels) is missing" in message
    assert str(package.resolve()) in message
    assert "python setup.py build_ext --inplace" in message
    assert f"pip install {tmp_path}" in message
    assert "circular import" not in result.stderr


def test_python_m_in_unbuilt_checkout_says_how_to_build(tmp_path):
    _copy_without_extension(tmp_path)
    (tmp_path / "setup.py").write_text("# marks a source checkout\n")
    result = _run_copy(["-m", "fastlogit", "--help"], tmp_path)
    assert result.returncode == 1
    assert "compiled extension (fastlogit._kernels) is missing" in result.stderr


def test_extension_for_another_python_is_named(tmp_path):
    package = _copy_without_extension(tmp_path)
    foreign = package / "_kernels.cpython-39-x86_64-linux-gnu.so"
    foreign.write_bytes(b"not loaded")
    # No setup.py next to it: an installation, not a checkout.
    result = _run_copy(["-c", "import fastlogit"], tmp_path)
    assert result.returncode == 1
    assert foreign.name in result.stderr and "built for another Python" in result.stderr
    assert "pip install --force-reinstall fastlogit" in result.stderr


def test_python_m_fastlogit_runs_from_the_package_parent():
    # For an in-place build this is the checkout itself, where the README leaves a developer.
    result = run_python(["-m", "fastlogit", "show-config"], cwd=PACKAGE_PARENT)
    assert result.returncode == 0, result.stderr
    assert re.search(r"^\s*version: " + re.escape(fastlogit.__version__) + "$",
                     result.stdout, re.M), result.stdout


def test_version_has_one_home():
    from fastlogit import _version
    assert fastlogit.__version__ == _version.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+([ab]|rc|\.dev|\.post)?\d*", fastlogit.__version__)
    assert fastlogit.build_info()["version"] == fastlogit.__version__


def test_installed_metadata_version_matches():
    from importlib import metadata
    try:
        dist = metadata.distribution("fastlogit")
    except metadata.PackageNotFoundError:
        pytest.skip("fastlogit is not installed (an in-place build has no metadata)")
    if Path(dist.locate_file("fastlogit")).resolve() != PACKAGE_DIR:
        pytest.skip("the installed fastlogit is not the package under test")
    assert dist.version == fastlogit.__version__


def test_readme_examples_that_claim_values_give_them():
    readme = Path(PACKAGE_PARENT) / "README.md"
    if not readme.is_file():
        pytest.skip("needs the source checkout")
    blocks = re.findall(r"```python\n(.*?)```", readme.read_text(encoding="utf-8"), re.S)
    # The blocks written as sessions of fastlogit calls (the textbook failures
    # above them are annotated with true values, not runnable as doctests).
    sessions = [b for b in blocks if ">>> import fastlogit" in b]
    assert sessions, "the README's fastlogit session is gone"
    parser, runner = doctest.DocTestParser(), doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for i, block in enumerate(sessions):
        runner.run(parser.get_doctest(block, {}, f"README block {i}", str(readme), 0))
    assert runner.summarize(verbose=False).failed == 0
