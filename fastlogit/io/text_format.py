"""How a delimited text file was saved: its encoding, delimiter and decimal mark.

:class:`TextFormat` is the one place where these are found (from the start of the
file) and where a field is parsed as a number or a label, for both engines of
:mod:`fastlogit.io.csv`.  What is recognised, as Excel and other tools save text:

* UTF-8 with or without a byte-order mark (Excel's "CSV UTF-8"), UTF-16 with one
  (Excel's "Unicode Text"), or Windows-1252 (Excel's "CSV (Comma delimited)" on
  Western-European Windows) when the start of the file is not UTF-8;
* fields separated by ``;``, tab or ``,`` (the first that splits the first lines
  evenly; ``.tsv`` is always tab; a first line ``sep=X``, which Excel writes and
  honours, names it), and with any delimiter but ``,`` a decimal comma (``0,5``)
  when the first lines have one; a ``.`` is then refused, never guessed;
* MISSING: the fields that mean "no value".
"""
from __future__ import annotations

import codecs
import csv
import itertools
import math
import re
from dataclasses import dataclass
from pathlib import Path

from fastlogit.io.files import InputError, suffix_of

__all__ = ["MISSING", "TextFormat"]

# utf-8-sig reads plain UTF-8 too, and drops a leading byte-order mark.
UTF8 = "utf-8-sig"
# How much of the file decides its encoding, and how many lines its delimiter.
SAMPLE_BYTES = 1 << 16
SAMPLE_LINES = 20
# Fields that mean "no value" (read as NaN, then handled as any NaN): what Excel (#N/A),
# R and pandas (NA), and SQL exports (NULL) write for a missing value.  Excel's other error
# values (#DIV/0!, #VALUE!) are not missing values but errors, and are reported as such.
MISSING = ("", "NA", "N/A", "#N/A", "NULL", "null")
_LINE_END = re.compile(r"\r\n|\r|\n")   # as the csv module counts lines
# A number written with a decimal comma: 0,5  -1,25e-3  ,5
_DECIMAL_COMMA = re.compile(r"\s*[+-]?\d*,\d+(?:[eE][+-]?\d+)?\s*$")


def _sniff_encoding(path: Path, label: str) -> str:
    """UTF-16 when the file starts with its byte-order mark, else UTF-8 when its first
    SAMPLE_BYTES decode as UTF-8, else Windows-1252 when they decode as that."""
    with open(path, "rb") as fh:
        head = fh.read(SAMPLE_BYTES)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        # final=False: a character cut by the end of the sample is not an error
        codecs.getincrementaldecoder("utf-8")().decode(head, final=len(head) < SAMPLE_BYTES)
        return UTF8
    except UnicodeDecodeError:
        pass
    try:
        head.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        raise InputError(f"{label} is not text (UTF-8, UTF-16 with a byte-order mark, "
                         f"or Windows-1252)") from None


def _sniff_delimiter(lines: list[str]) -> str:
    """';', tab or ',': the first that splits every sampled line into the same number (> 1)
    of fields, ',' if none does (one column).  ';' first: Excel separates fields with ';'
    where the decimal mark is ',' (0,5;1,25 splits evenly at ',' too), and a comma-separated
    file rarely has the same number of ';' on every line, header included."""
    for delimiter in (";", "\t", ","):
        counts = {len(fields) for fields in csv.reader(lines, delimiter=delimiter)}
        if len(counts) == 1 and counts.pop() > 1:
            return delimiter
    return ","


@dataclass(frozen=True)
class TextFormat:
    """How a delimited text file was saved: the one place its fields are split and parsed."""

    encoding: str          # a Python codec name
    delimiter: str
    decimal_comma: bool    # numbers are written 0,5 (a delimiter other than ',')
    sep_hint: bool = False  # the first line is Excel's "sep=X", which names the delimiter

    @classmethod
    def of(cls, path: Path, label: str) -> "TextFormat":
        encoding = _sniff_encoding(path, label)
        with open(path, newline="", encoding=encoding, errors="replace") as fh:
            lines = [line for line in itertools.islice(fh, 10 * SAMPLE_LINES) if line.strip()]
        hint = lines[0].rstrip("\r\n") if lines else ""
        sep_hint = len(hint) == 5 and hint.startswith("sep=")
        lines = lines[1:SAMPLE_LINES + 1] if sep_hint else lines[:SAMPLE_LINES]
        if sep_hint:
            delimiter = hint[4]
        else:
            delimiter = "\t" if suffix_of(path) == ".tsv" else _sniff_delimiter(lines)
        decimal_comma = delimiter != "," and any(
            _DECIMAL_COMMA.match(field) for fields in csv.reader(lines, delimiter=delimiter)
            for field in fields)
        return cls(encoding, delimiter, decimal_comma, sep_hint)

    @property
    def encoding_name(self) -> str:
        return {UTF8: "UTF-8", "utf-16": "UTF-16", "cp1252": "Windows-1252"}[self.encoding]

    @property
    def arrow_encoding(self) -> str:
        return "utf8" if self.encoding == UTF8 else self.encoding

    def undecodable(self, path: Path, label: str) -> InputError:
        """The error for a file that stops being text in its encoding past the sample that
        chose it: the exact line and bytes (the csv module reads ahead, so the line it had
        reached is not the one).  Decodes the file again from the start; only ever on the
        way to an error."""
        decoder = codecs.getincrementaldecoder(self.encoding)()
        ends, after_cr = 0, False           # line ends so far; did the text end in '\r'?

        def count(text: str) -> None:
            nonlocal ends, after_cr
            ends += len(_LINE_END.findall(text)) - (after_cr and text.startswith("\n"))
            after_cr = text.endswith("\r") if text else after_cr

        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(SAMPLE_BYTES), b""):
                pending = len(getattr(decoder, "buffer", b""))
                try:
                    count(decoder.decode(chunk))
                except UnicodeDecodeError as exc:
                    count(decoder.decode(chunk[:max(exc.start - pending, 0)]))
                    return InputError(f"{label} line {ends + 1}: {exc.object[exc.start:exc.end]!r} "
                                      f"is not {self.encoding_name} text (the file's start is; "
                                      f"save the whole file in one encoding)")
        return InputError(f"{label} is not {self.encoding_name} text")

    def number(self, text: str) -> float:
        """A field as a float; an empty field or a MISSING marker is a missing value (NaN).
        With a decimal comma a '.' is refused, never guessed: Excel writes digit grouping
        (1.234,5) as shown."""
        text = text.strip()
        if text in MISSING:
            return math.nan
        if self.decimal_comma:
            if "." in text:
                raise ValueError(text)
            text = text.replace(",", ".")
        return float(text)

    def label_text(self, text: str) -> str:
        """A label as text: a MISSING marker as "" (no label), a decimal-comma number
        rewritten with '.' (0,5 -> 0.5)."""
        text = text.strip()
        if text in MISSING:
            return ""
        if self.decimal_comma and _DECIMAL_COMMA.match(text):
            return text.replace(",", ".")
        return text

    def not_a_number(self, text: str) -> str:
        why = f"{text.strip()[:40]!r} is not a number"
        if self.decimal_comma and "." in text:
            why += (" (this file writes decimals with ',': a '.' is read neither as a decimal "
                    "mark nor as digit grouping; save the numbers without grouping)")
        elif self.delimiter != "," and _DECIMAL_COMMA.match(text):
            why += (f" (a decimal comma, but none of the first {SAMPLE_LINES} lines has one, "
                    f"so the file was taken to write decimals with '.')")
        return why
