"""Tables in and scores out: readers, writers and file safety.

* :mod:`fastlogit.io.files`: user-facing errors, output-path checks, atomic output (files, folders);
* :mod:`fastlogit.io.readers`: :func:`open_table` by suffix (CSV, .npy, .npz, Parquet);
* :mod:`fastlogit.io.writers`: score writers (.npy, CSV, Parquet).
"""
from fastlogit.io.files import (
    InputError,
    OutputError,
    atomic_folder,
    atomic_output,
    check_distinct_paths,
    check_output_path,
)
from fastlogit.io.readers import READ_SUFFIXES, open_table
from fastlogit.io.table import TableReader
from fastlogit.io.writers import WRITE_SUFFIXES, open_writer, write_scores

__all__ = [
    "InputError",
    "OutputError",
    "atomic_output",
    "atomic_folder",
    "check_distinct_paths",
    "check_output_path",
    "open_table",
    "open_writer",
    "write_scores",
    "TableReader",
    "READ_SUFFIXES",
    "WRITE_SUFFIXES",
]
