"""Tables written in every format a folder of parts may hold, and read back,
for the part-folder tests (test_dask_parts.py, test_csv_parts.py).

Text is written as the tools that make such folders write it: ``csv`` as
Spark does (',', '.', an empty field for a missing value), ``tsv`` and
``txt`` as a European Excel does (a decimal comma; R's ``NA`` and Excel's
``#N/A`` for a missing value).  Numbers are written in their shortest
round-trip form, so a table read back is bit for bit the one written.
"""
from pathlib import Path

import numpy as np

from fastlogit.io import open_table

SUFFIX = {"parquet": ".parquet", "npy": ".npy", "csv": ".csv", "tsv": ".tsv", "txt": ".txt"}
# delimiter, decimal mark, missing value
TEXT_STYLE = {"csv": (",", ".", ""), "tsv": ("\t", ",", "NA"), "txt": (";", ",", "#N/A")}
TEXT = tuple(TEXT_STYLE)


def _field(value, decimal: str, missing: str) -> str:
    if isinstance(value, str):
        return value
    value = float(value)
    if np.isnan(value):
        return missing
    return repr(value).replace(".", decimal)


def write_table(stem: Path, columns: dict, fmt: str, header: bool = True) -> Path:
    """``columns`` (name -> 1-D array) as ``stem`` + the format's suffix.  A .npy
    table (and a text one without ``header``) has no names: "0", "1", ..."""
    path = Path(str(stem) + SUFFIX[fmt])
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table(columns), path)
    elif fmt == "npy":
        np.save(path, np.column_stack(list(columns.values())))
    else:
        delimiter, decimal, missing = TEXT_STYLE[fmt]
        lines = [delimiter.join(columns)] if header else []
        lines += [delimiter.join(_field(v, decimal, missing) for v in row)
                  for row in zip(*columns.values())]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def read_table(path) -> dict:
    """Every column of a table as float64 (a text column as str), by fastlogit's reader."""
    with open_table(path) as reader:
        out = {}
        for j, name in enumerate(reader.columns):
            try:
                out[name] = reader.read_all([j])[:, 0]
            except ValueError:
                out[name] = reader.read_labels(j)
        return out


def read_folder(folder, suffix: str) -> dict:
    """The ``suffix`` files of ``folder`` in name order, read as one table."""
    tables = [read_table(p) for p in sorted(Path(folder).glob("*" + suffix))]
    return {name: np.concatenate([t[name] for t in tables]) for name in tables[0]}


def row_line(fmt: str, row: int, header: bool = True) -> str:
    """How a message names 1-based data row ``row`` of a part (a regex)."""
    if fmt in TEXT:
        return rf"row {row} \(line {row + header}\)"
    return f"row {row}"
