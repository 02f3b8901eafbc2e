"""Replacing a folder of parts all or nothing (``fastlogit.io.files.atomic_folder``).

A reader that opens the output folder must find the complete old set of
files or the complete new set, never a mix; a process killed at any point
must leave the old folder or the new one whole (and, with the rename-aside
fallback, findable); no file named like a final part is ever half-written.
Checked by watching the folder at every rename (or exchange) of the swap,
by raising at each of them, and by killing a child process at each of them,
with the Linux exchange and with the fallback used elsewhere.
"""
from __future__ import annotations

import ctypes
import errno
import os
import stat
import sys
import textwrap
from pathlib import Path

import pytest

from fastlogit.io import files
from fastlogit.io.files import atomic_folder

OLD = {"p0.npy": b"old-0", "p1.npy": b"old-1", "notes.txt": b"mine"}
NEW = {"p0.npy": b"new-0" * 100, "p1.npy": b"new-1" * 100}
# What the folder holds after a replacement: the new parts, the old other files.
AFTER = {**OLD, **NEW}
EXCHANGE_WORKS = files._renameat2() is not None


def snapshot(path: Path):
    """What a reader opening ``path`` finds: {name: bytes}, or None (no folder).

    The folder is opened once and its files are read relative to it, as a
    careful reader does; a file deleted under the reader (the old folder being
    removed after the swap) is a retry, never a mix."""
    while True:
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except FileNotFoundError:
            return None
        try:
            found = {}
            for name in os.listdir(fd):
                if name.startswith("."):
                    continue
                with open(os.open(name, os.O_RDONLY, dir_fd=fd), "rb") as f:
                    found[name] = f.read()
            return found
        except FileNotFoundError:
            continue
        finally:
            os.close(fd)


def make_old(path: Path, content=OLD) -> None:
    path.mkdir(parents=True)
    for name, data in content.items():
        (path / name).write_bytes(data)


def write_new(tmp: Path) -> None:
    for name, data in NEW.items():
        (tmp / name).write_bytes(data)


@pytest.fixture(params=["exchange", "fallback"])
def mode(request, monkeypatch):
    if request.param == "exchange":
        if not EXCHANGE_WORKS:
            pytest.skip("no renameat2 on this system")
    else:
        monkeypatch.setattr(files, "_renameat2", lambda: None)
    return request.param


def _watch_every_step(monkeypatch, path: Path, seen: list) -> None:
    """Record what a reader finds before and after every rename and exchange."""
    real_rename, real_replace, real_exchange = os.rename, os.replace, files._exchange

    def watched(fn):
        def step(*args, **kwargs):
            seen.append(snapshot(path))
            out = fn(*args, **kwargs)
            seen.append(snapshot(path))
            return out
        return step

    monkeypatch.setattr(os, "rename", watched(real_rename))
    monkeypatch.setattr(os, "replace", watched(real_replace))
    monkeypatch.setattr(files, "_exchange", watched(real_exchange))


def test_a_reader_sees_the_old_set_or_the_new_set_at_every_step(tmp_path, monkeypatch, mode):
    path = tmp_path / "out"
    make_old(path)
    seen: list = []
    _watch_every_step(monkeypatch, path, seen)
    with atomic_folder(path) as tmp:
        write_new(tmp)
    monkeypatch.undo()
    assert snapshot(path) == AFTER
    assert seen and all(s in (OLD, AFTER) or (s is None and mode == "fallback") for s in seen), seen
    assert seen[0] == OLD and seen[-1] == AFTER
    if mode == "exchange":
        assert None not in seen              # never absent, not even for an instant
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_the_watcher_sees_the_mix_of_renaming_parts_in_one_by_one(tmp_path, monkeypatch):
    # Negative control: the former way (one os.replace per part into the
    # existing folder) shows a reader a mix of old and new parts.
    path = tmp_path / "out"
    make_old(path)
    tmp = tmp_path / ".out.tmp"
    tmp.mkdir()
    write_new(tmp)
    seen: list = []
    _watch_every_step(monkeypatch, path, seen)
    for entry in sorted(tmp.iterdir()):
        os.replace(entry, path / entry.name)
    monkeypatch.undo()
    assert {**OLD, "p0.npy": NEW["p0.npy"]} in seen


def _fail_at(monkeypatch, *ks: int):
    """Make the k-th renames or exchanges (counting from 1) raise OSError."""
    calls = {"n": 0}

    def failing(fn):
        def step(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] in ks:
                raise OSError(errno.EIO, "injected failure")
            return fn(*args, **kwargs)
        step.__wrapped__ = fn
        return step

    monkeypatch.setattr(os, "rename", failing(os.rename))
    monkeypatch.setattr(os, "replace", failing(os.replace))
    monkeypatch.setattr(files, "_exchange", failing(files._exchange))
    return calls


# The calls, in order: the exchange (the fallback's answers "cannot"), then
# with the fallback the rename aside and the rename in; last the rename of the
# old folder to be deleted.
CALLS = {"exchange": 2, "fallback": 4}
CALLS_THAT_FAIL_THE_SWAP = {"exchange": 1, "fallback": 3}


def test_a_failing_rename_leaves_the_old_folder_or_the_new_one(tmp_path, monkeypatch, mode):
    for k in range(1, CALLS[mode] + 1):
        path = tmp_path / str(k) / "out"
        make_old(path)
        calls = _fail_at(monkeypatch, k)
        failed = False
        try:
            with atomic_folder(path) as tmp:
                write_new(tmp)
        except OSError as exc:
            assert "injected failure" in str(exc)
            failed = True
        monkeypatch.setattr(os, "rename", os.rename.__wrapped__)
        monkeypatch.setattr(os, "replace", os.replace.__wrapped__)
        monkeypatch.setattr(files, "_exchange", files._exchange.__wrapped__)
        # Raised: the old folder as it was; not raised: the new one (a failure
        # while deleting the old folder afterwards is not the caller's problem).
        assert snapshot(path) == (OLD if failed else AFTER), k
        assert sorted(os.listdir(path.parent)) == ["out"], "nothing left beside the folder"
        assert failed == (k <= CALLS_THAT_FAIL_THE_SWAP[mode]), k
        assert calls["n"] >= k, "the injected failure was reached"


def test_when_the_old_folder_cannot_be_put_back_the_error_says_where_it_is(tmp_path,
                                                                           monkeypatch):
    monkeypatch.setattr(files, "_renameat2", lambda: None)
    path = tmp_path / "out"
    make_old(path)
    _fail_at(monkeypatch, 3, 4)            # the rename in, then the rename back
    with pytest.raises(files.OutputError, match=r"could not put the folder .*out.* back .*"
                                                r"its old content is in .*\.out\..*\.old"):
        with atomic_folder(path) as tmp:
            write_new(tmp)
    monkeypatch.undo()
    (aside,) = [p for p in tmp_path.iterdir() if p.name.endswith(".old")]
    assert snapshot(path) is None and snapshot(aside) == OLD
    assert sorted(p.name for p in tmp_path.iterdir()) == [aside.name]


CHILD = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    from fastlogit.io import files
    path, mode, k = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    if mode == "fallback":
        files._renameat2 = lambda: None
    calls = [0]
    def dying(fn):
        def step(*args, **kwargs):
            calls[0] += 1
            if calls[0] == k:
                os._exit(17)                  # killed: no cleanup of any kind
            return fn(*args, **kwargs)
        return step
    os.rename, os.replace = dying(os.rename), dying(os.replace)
    files._exchange = dying(files._exchange)
    with files.atomic_folder(path) as tmp:
        for name, data in {new!r}.items():
            with open(tmp / name, "wb") as f:  # half-written, then killed
                f.write(data[:5])
                if k == 0:
                    os._exit(17)
                f.write(data[5:])
""")


def test_a_process_killed_at_any_step_leaves_a_whole_folder(tmp_path, mode):
    import subprocess

    from conftest import PACKAGE_PARENT

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (PACKAGE_PARENT, os.environ.get("PYTHONPATH")) if p))
    code = CHILD.format(new=NEW)
    runs = {}
    for k in range(0, CALLS[mode] + 2):      # 0: killed while writing; last: not killed
        (tmp_path / str(k)).mkdir()
        make_old(tmp_path / str(k) / "out")
        runs[k] = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / str(k) / "out"),
                                    mode, str(k)], cwd=tmp_path, env=env,
                                   stderr=subprocess.PIPE, text=True)
    outcomes = set()
    for k, run in runs.items():
        _, err = run.communicate(timeout=120)
        assert run.returncode in (0, 17), err
        parent = tmp_path / str(k)
        now = snapshot(parent / "out")
        others = {p.name: p for p in parent.iterdir() if p.name != "out"}
        if now is None:
            # Only between the two renames of the fallback: both folders whole.
            assert mode == "fallback", k
            (old,) = [p for n, p in others.items() if n.endswith(".old")]
            (new,) = [p for n, p in others.items() if n.endswith(".tmp")]
            assert snapshot(old) == OLD and snapshot(new) == AFTER
            outcomes.add("absent")
        else:
            assert now in (OLD, AFTER), (k, now)
            outcomes.add("old" if now == OLD else "new")
            # Leftovers are hidden folders only; a killed writer's file is
            # inside one of them, never at a final part's name in the folder.
            assert all(n.startswith(".") for n in others), others
        if run.returncode == 0:
            assert now == AFTER and not others
    assert {"old", "new"} <= outcomes
    assert ("absent" in outcomes) == (mode == "fallback")


def test_other_files_are_carried_over_with_the_old_folders_permissions(tmp_path, mode):
    path = tmp_path / "out"
    make_old(path)
    (path / "sub").mkdir()
    (path / "sub" / "a.txt").write_text("deep")
    os.symlink("notes.txt", path / "link")
    os.chmod(path, 0o750)
    inode = (path / "notes.txt").stat().st_ino
    with atomic_folder(path) as tmp:
        write_new(tmp)
    assert {p.name for p in path.iterdir()} == set(AFTER) | {"sub", "link"}
    assert (path / "sub" / "a.txt").read_text() == "deep"
    assert os.readlink(path / "link") == "notes.txt"
    assert (path / "notes.txt").stat().st_ino == inode           # linked, not copied
    assert stat.S_IMODE(path.stat().st_mode) == 0o750
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_a_symlinked_output_folder_is_replaced_where_it_points(tmp_path, mode):
    real = tmp_path / "data" / "scores"
    make_old(real)
    link = tmp_path / "scores"
    os.symlink(real, link)
    with atomic_folder(link) as tmp:
        assert tmp.parent == real.parent
        write_new(tmp)
    assert link.is_symlink() and snapshot(link) == AFTER and snapshot(real) == AFTER
    assert sorted(os.listdir(real.parent)) == ["scores"]


def test_the_exchange_falls_back_off_linux_and_on_file_systems_without_it(tmp_path, monkeypatch):
    files._renameat2.cache_clear()
    monkeypatch.setattr(sys, "platform", "darwin")
    assert files._renameat2() is None
    files._renameat2.cache_clear()
    monkeypatch.undo()
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()

    def unsupported(*args):
        ctypes.set_errno(errno.EINVAL)     # what a file system without RENAME_EXCHANGE answers
        return -1

    monkeypatch.setattr(files, "_renameat2", lambda: unsupported)
    assert files._exchange(a, b) is False

    def busy(*args):
        ctypes.set_errno(errno.EBUSY)
        return -1

    monkeypatch.setattr(files, "_renameat2", lambda: busy)
    with pytest.raises(OSError) as exc:
        files._exchange(a, b)
    assert exc.value.errno == errno.EBUSY
    # And a real replacement through the fallback (no exchange at all).
    monkeypatch.setattr(files, "_renameat2", lambda: None)
    make_old(tmp_path / "out")
    with atomic_folder(tmp_path / "out") as tmp:
        write_new(tmp)
    assert snapshot(tmp_path / "out") == AFTER


@pytest.mark.skipif(not EXCHANGE_WORKS, reason="no renameat2 on this system")
def test_the_exchange_swaps_two_folders(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    make_old(a, {"x": b"1"})
    make_old(b, {"y": b"2"})
    assert files._exchange(a, b) is True
    assert snapshot(a) == {"y": b"2"} and snapshot(b) == {"x": b"1"}
