"""File safety shared by every reader and writer: user-facing errors,
output-path checks and atomic output.

* :class:`InputError` / :class:`OutputError`: a file the user named is wrong;
  reported by the command line as one line naming the file.
* :func:`check_output_path`: can this output be written at all (folder,
  suffix, optional dependency)?  Called before any work is done.
* :func:`check_distinct_paths`: no output may name an input, the model or
  another output.  Called before anything is written.
* :func:`atomic_output`: the one atomic-write helper (tables, parts, plots,
  model files): a temporary file in the target's folder renamed over the
  target on success, deleted on any failure (Ctrl-C included).
* :func:`atomic_folder`: the same for a folder of files (Dask scoring's
  output parts): a temporary sibling folder, renamed to the target on
  success (or swapped with an existing target in one step: a reader sees
  the old set or the new set, never a mix), deleted with everything in it
  on any failure.
"""
from __future__ import annotations

import contextlib
import errno
import functools
import os
import shutil
import stat
import sys
import tempfile
from pathlib import Path
from typing import Iterable, Iterator, Sequence

__all__ = [
    "InputError",
    "OutputError",
    "atomic_output",
    "atomic_folder",
    "check_output_path",
    "check_distinct_paths",
    "need_pyarrow",
    "suffix_of",
    "WRITE_SUFFIXES",
]


# The formats scores can be written in (see fastlogit.io.writers).
WRITE_SUFFIXES = (".npy", ".csv", ".parquet", ".pq")


class InputError(ValueError):
    """An input table that is missing, unreadable, malformed or not numeric."""


class OutputError(ValueError):
    """An output path that cannot be written (missing folder, unknown format...)."""


def suffix_of(path: str | os.PathLike) -> str:
    """The lower-case suffix that picks a reader or a writer."""
    return Path(path).suffix.lower()


def need_pyarrow(what: str, error: type = InputError):
    """``pyarrow.parquet``, or ``error`` saying how to install it."""
    try:
        import pyarrow  # noqa: F401
        import pyarrow.parquet as pq
    except ImportError:
        raise error(f"{what} needs pyarrow; install it with: pip install 'fastlogit[parquet]'") from None
    return pq


def check_output_path(path: str | os.PathLike, what: str = "OUTPUT",
                      suffixes: Sequence[str] | None = WRITE_SUFFIXES) -> Path:
    """Check, before any work is done, that ``path`` can be written.

    ``suffixes`` (lower case, with the dot) are the formats accepted; None
    accepts any name.

    Raises
    ------
    OutputError
        The folder is missing or not writable, the path is a folder, or the
        suffix is not one of ``suffixes``.
    """
    path = Path(path)
    folder = path.parent
    suffix = suffix_of(path)
    if suffixes is not None and suffix not in suffixes:
        raise OutputError(f"{what} {str(path)!r}: unknown format {suffix or '(no suffix)'!r}; "
                          f"expected one of {', '.join(suffixes)}")
    if not folder.exists():
        raise OutputError(f"cannot write {what} {str(path)!r}: folder {str(folder)!r} does not exist")
    if not folder.is_dir():
        raise OutputError(f"cannot write {what} {str(path)!r}: {str(folder)!r} is not a folder")
    if path.is_dir():
        raise OutputError(f"cannot write {what} {str(path)!r}: it is a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {what} {str(path)!r}: folder {str(folder)!r} is not writable")
    if suffix in (".parquet", ".pq"):  # found out now, not after the input was read
        need_pyarrow(f"writing {what} {str(path)!r}", OutputError)
    return path


def _same_file(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    # An output that does not exist yet can still name an input through
    # another spelling ("./x.npy", a symlinked folder): compare real paths.
    return os.path.realpath(a) == os.path.realpath(b)


def check_distinct_paths(outputs: Iterable[tuple[str, str | os.PathLike]],
                         others: Iterable[tuple[str, str | os.PathLike]]) -> None:
    """Refuse an output that names an input, the model or another output.

    ``outputs`` and ``others`` are ``(what, path)`` pairs; ``what`` names the
    file in the message ("OUTPUT", "INPUT", "MODEL", ...).
    Two outputs whose names differ only in case are refused as well: they
    are the same file on macOS and Windows.

    Raises
    ------
    OutputError
    """
    outputs = [(what, Path(p)) for what, p in outputs]
    others = [(what, Path(p)) for what, p in others]
    for what, out in outputs:
        for other_what, other in others:
            if _same_file(out, other):
                raise OutputError(f"{what} {str(out)!r} is the {other_what} file "
                                  f"({str(other)!r}); choose another output name")
    seen: dict[str, tuple[str, Path]] = {}
    for what, out in outputs:
        key = os.path.normcase(os.path.realpath(out)).lower()
        if key in seen:
            first_what, first = seen[key]
            raise OutputError(f"{what} {str(out)!r} and {first_what} {str(first)!r} would be "
                              f"written to the same file; rename one of them")
        seen[key] = (what, out)


def _default_file_mode(full: int = 0o666) -> int:
    # mkstemp creates 0600 (mkdtemp 0700); give the final file (0o666) or
    # folder (0o777) the mode open() or mkdir() would have given it.
    umask = os.umask(0)
    os.umask(umask)
    return full & ~umask


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Context manager: yields a temporary path next to ``path``; on a clean
    exit renames it to ``path``, on any exception (Ctrl-C included) deletes it.

    Examples
    --------
    >>> import tempfile, os
    >>> target = os.path.join(tempfile.mkdtemp(), "out.txt")
    >>> with atomic_output(target) as tmp:
    ...     _ = open(tmp, "w").write("done")
    >>> open(target).read()
    'done'
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, _default_file_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _discard_folder(tmp: Path) -> None:
    # Renamed away first: a task still running elsewhere (a Dask worker after
    # another part failed) names files by the old path, so from now on it can
    # create nothing in here; then deleted with whatever it holds.
    trash = tmp.with_name(tmp.name + ".discard")
    try:
        os.rename(tmp, trash)
    except OSError:
        trash = tmp
    shutil.rmtree(trash, ignore_errors=True)


# renameat2(2) (Linux >= 3.15, glibc >= 2.28): RENAME_EXCHANGE swaps two
# existing paths in one step, so a reader opening the folder sees one of
# them whole, never neither and never a mix.
_AT_FDCWD = -100
_RENAME_EXCHANGE = 1 << 1
# The file system (or kernel) has no exchange: fall back to rename-aside.
_NO_EXCHANGE = {errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, getattr(errno, "ENOTSUP", 95)}


@functools.lru_cache(maxsize=None)
def _renameat2():
    """libc's renameat2 through ctypes, or None (not Linux, no such symbol)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (ImportError, OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def _exchange(a: Path, b: Path) -> bool:
    """Swap the existing paths ``a`` and ``b`` atomically; False if this
    system or file system cannot (the caller falls back), OSError otherwise."""
    fn = _renameat2()
    if fn is None:
        return False
    import ctypes

    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in _NO_EXCHANGE:
        return False
    raise OSError(err, os.strerror(err), str(a), None, str(b))


def _link_or_copy(src: str, dst: str) -> None:
    # A hard link costs no copy and leaves the old folder's file untouched
    # until that folder is deleted; a file system without links gets a copy.
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError:
        shutil.copy2(src, dst, follow_symlinks=False)


def _carry_over(old: Path, new: Path) -> None:
    """Put into ``new`` every entry of ``old`` that ``new`` does not replace."""
    with os.scandir(old) as entries:
        for entry in entries:
            dst = os.path.join(new, entry.name)
            if os.path.lexists(dst):
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.copytree(entry.path, dst, symlinks=True, copy_function=_link_or_copy)
            else:
                _link_or_copy(entry.path, dst)


def _swap_in(new: Path, path: Path) -> Path:
    """Put the complete folder ``new`` at ``path`` (an existing folder);
    returns where the old folder is now (to be deleted)."""
    if _exchange(new, path):
        return new
    # No exchange: rename aside, rename in.  Between the two renames ``path``
    # is absent (a reader finds no folder, never a mix); a crash there leaves
    # the old folder whole at ``aside`` and the new one whole at ``new``.
    aside = new.with_name(new.name[: -len(".tmp")] + ".old")
    os.rename(path, aside)
    try:
        os.rename(new, path)
    except BaseException:
        try:
            os.rename(aside, path)
        except OSError as exc:
            raise OutputError(f"could not put the folder {str(path)!r} back ({exc}); "
                              f"its old content is in {str(aside)!r}") from None
        raise
    return aside


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Context manager for a folder of files written all or nothing.

    Yields a new, empty temporary folder next to ``path`` (``.NAME.xxxx.tmp``;
    its parent folders are created if missing).  On a clean exit:

    * ``path`` does not exist: the temporary folder is renamed to ``path``;
    * ``path`` is a folder: its entries that the new files do not replace
      are hard-linked (copied where links are impossible) into the temporary
      folder, which takes the old folder's permissions, and then **replaces
      the folder in one step**: on Linux an atomic exchange (``renameat2``
      with ``RENAME_EXCHANGE``), elsewhere (or on a file system without it)
      a rename aside and a rename in, during which ``path`` is briefly
      absent.  The old folder is then deleted.

    A reader that opens ``path`` therefore finds the complete old set of
    files or the complete new one, never a mix (with the fallback, possibly
    no folder for the instant between the two renames).  A process killed
    at any point leaves ``path`` old or new, whole; with the fallback, if
    killed between the two renames, the old folder is ``.NAME.xxxx.old`` and
    the new one ``.NAME.xxxx.tmp`` next to it.  No file is ever created
    inside ``path`` itself: entries added to it by someone else while the
    new set is being moved in are lost with the old folder.

    On any exception (Ctrl-C included) before the swap, the temporary folder
    is deleted with everything in it and ``path`` is left as it was.

    Examples
    --------
    >>> import tempfile, os
    >>> target = os.path.join(tempfile.mkdtemp(), "parts")
    >>> with atomic_folder(target) as tmp:
    ...     _ = (tmp / "a.txt").write_text("done")
    >>> sorted(os.listdir(target))
    ['a.txt']
    """
    path = Path(path)
    if path.is_symlink() and path.is_dir():
        # Replace the folder the link names, in its own parent (one file system).
        path = Path(os.path.realpath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        if not path.is_dir():
            os.chmod(tmp, _default_file_mode(0o777))
            os.rename(tmp, path)
            return
        _carry_over(path, tmp)
        os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
        old = _swap_in(tmp, path)
    except BaseException:
        _discard_folder(tmp)
        raise
    _discard_folder(old)
