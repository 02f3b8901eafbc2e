"""Which files of a folder are its parts, and what their headers say.

The one rule, used to read a folder (:func:`list_parts`) and to guard an
output folder against stale parts (:func:`is_part`):

* a part is a regular file whose suffix (any case) is one of
  :data:`PART_SUFFIXES`: ``.parquet`` / ``.pq`` (Parquet), ``.npy``, or
  ``.csv`` / ``.tsv`` / ``.txt`` (delimited text, one format: "csv");
* a file whose name starts with ``.`` or ``_`` is **never** a part, whatever
  its suffix: Spark's and Hive's ``_SUCCESS`` and ``.part-00000-....csv.crc``,
  the temporary files of an atomic write, a ``_notes.txt`` kept on purpose;
* every other file is ignored, except one that looks like a compressed part
  (``part-0.csv.gz``): it is refused, since ignoring it would silently leave
  its rows out;
* the parts of a folder share one format: Parquet and ``.npy`` parts, or
  either and text parts, together are an error naming one file of each.

Parts are taken in file-name order.  Text parts are read by the same reader
as a single file (:class:`fastlogit.io.csv.CsvReader` through
:func:`fastlogit.io.open_table`), each part's encoding, delimiter and decimal
mark found on its own.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from fastlogit.io.files import InputError, suffix_of
from fastlogit.io.readers import open_table
from fastlogit.io.table import default_names

__all__ = ["PART", "PART_SUFFIXES", "FORMAT_NAMES", "is_part", "list_parts", "describe_part",
           "check_same_columns", "count_rows", "part_name"]

PART_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".npy": "npy",
                 ".csv": "csv", ".tsv": "csv", ".txt": "csv"}
FORMAT_NAMES = {"parquet": "Parquet", "npy": ".npy", "csv": "CSV/text"}
# A part compressed as a whole file: not readable, and never silently skipped.
COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".zst", ".zip", ".lz4", ".snappy")
# What a part is called in messages; the readers add its path.
PART = "INPUT part"
LISTED = "(.parquet, .pq, .npy, .csv, .tsv or .txt; names starting with '.' or '_' are never parts)"


def part_name(path) -> str:
    return f"{PART} {str(path)!r}"


def is_part(path: Path) -> bool:
    """Whether ``path`` is a part by the rule of this module (see its docstring)."""
    return (not path.name.startswith((".", "_")) and suffix_of(path) in PART_SUFFIXES
            and path.is_file())


def _compressed_part(path: Path) -> bool:
    suffixes = [s.lower() for s in path.suffixes]
    return (not path.name.startswith((".", "_")) and len(suffixes) >= 2
            and suffixes[-1] in COMPRESSED_SUFFIXES and suffixes[-2] in PART_SUFFIXES)


def list_parts(folder) -> tuple[list[Path], str]:
    """The parts of ``folder`` in file-name order, and their format
    ("parquet", "npy" or "csv")."""
    folder = Path(folder)
    where = f"INPUT {str(folder)!r}"
    if not folder.is_dir():
        raise InputError(f"{where} must be a folder of parts {LISTED}; it is not a folder")
    entries = sorted(folder.iterdir())
    compressed = [p.name for p in entries if _compressed_part(p)]
    if compressed:
        raise InputError(f"{where} holds compressed part(s) ({', '.join(compressed[:3])}"
                         f"{', ...' if len(compressed) > 3 else ''}), which are not read; "
                         f"decompress them, or move them out of the folder")
    files = [p for p in entries if is_part(p)]
    if not files:
        raise InputError(f"{where} holds no parts {LISTED}")
    first_of = {}
    for p in files:
        first_of.setdefault(PART_SUFFIXES[suffix_of(p)], p.name)
    if len(first_of) > 1:
        mix = " and ".join(f"{FORMAT_NAMES[fmt]} parts ({name!r}, ...)"
                           for fmt, name in first_of.items())
        raise InputError(f"{where} mixes {mix}; expected parts of one format (a file whose "
                         f"name starts with '_' or '.' is not a part)")
    return files, next(iter(first_of))


def describe_part(path: Path) -> tuple[int | None, list[str]]:
    """(rows, column names) of one part, from its header; rows is None for a
    text part (its rows are known only by reading it: :func:`count_rows`)."""
    with open_table(path, PART) as reader:
        return reader.n_rows, list(reader.columns)


def count_rows(path: str, column: str) -> int:
    """The rows of one part: from its header when it has a row count, else by
    reading the one column ``column`` through the part's reader (the rows its
    blocks will have, by construction; a bad value there is an error naming
    the part, row and column)."""
    with open_table(path, PART) as reader:
        if reader.n_rows is not None:
            return int(reader.n_rows)
        index = reader.column_indices([column])
        return sum(block.shape[0] for block in reader.chunks(1 << 16, index))


def check_same_columns(files: Sequence[Path], names: Sequence[Sequence[str]]) -> list[str]:
    """The first part's column names, or an InputError naming the first part
    whose columns differ and how."""
    first = list(names[0])
    for path, part_names in zip(files[1:], names[1:]):
        part_names = list(part_names)
        if part_names == first:
            continue
        missing = [c for c in first if c not in part_names]
        extra = [c for c in part_names if c not in first]
        if missing or extra:
            how = "; ".join(text for text in (
                f"it lacks {missing!r}" if missing else "",
                f"it has {extra!r}, which the first part has not" if extra else "") if text)
        else:
            how = "the same columns in another order"
        hint = (" (a text part without a header line has columns '0', '1', ...)"
                if default_names(len(part_names)) in (part_names, first) else "")
        raise InputError(f"{part_name(path)} has columns {part_names!r}; the first part "
                         f"{files[0].name!r} has {first!r}: {how}{hint}")
    return first
