"""Reading a CSV file as users have them: the delimiter detected or set, a byte-order mark allowed, every ragged
line named with its line number, and a number column read cell by cell with the first bad cell named."""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from .config.data import delimiter_character
from .schema import ConfigError

MAX_LISTED = 20  # bad cells or lines named in one message
DELIMITERS = (",", ";", "\t", "|")  # detected among these, in this order of preference
SNIFFED_LINES = 50


def delimiter_name(delimiter: str) -> str:
    return {"\t": "tab", " ": "space"}.get(delimiter, repr(delimiter))


@dataclass
class CsvFile:
    path: Path
    header: list[str]
    rows: list[list[str]]
    lines: list[int]  # the line of the file each row ends on (1 is the header)
    delimiter: str
    hint: str = ""  # another delimiter that splits the header into more fields, if one does


def _parsed(text: str, delimiter: str) -> list[list[str]]:
    return [row for row in csv.reader(io.StringIO(text), delimiter=delimiter) if row]


def detect_delimiter(text: str) -> Optional[str]:
    """The delimiter among DELIMITERS that gives the first lines the most fields, every line as many as the
    header (at least 2); None if none does."""
    lines = text.splitlines()
    sample = "\n".join(lines[: SNIFFED_LINES + 1])
    best, most = None, 1
    for candidate in DELIMITERS:
        rows = _parsed(sample, candidate)
        if len(lines) > SNIFFED_LINES + 1:
            rows = rows[:-1]  # the sample may end inside a quoted field
        if rows and len(rows[0]) > most and all(len(row) == len(rows[0]) for row in rows):
            best, most = candidate, len(rows[0])
    return best


def header_of(text: str, delimiter: Optional[str] = None) -> list[str]:
    """The column names in a CSV's first lines, split as read_table splits them: `delimiter` (data.delimiter),
    else the detected one, else a comma. For a header read before the file is fetched (a bucket's object)."""
    chosen = delimiter_character(delimiter) if delimiter else detect_delimiter(text) or ","
    first = next((row for row in csv.reader(io.StringIO(text), delimiter=chosen) if row), [])
    return [name.strip() for name in first]


# A number written with a decimal comma (12,5 ,5 -3,25), and a whole number, which such a column also holds.
COMMA_NUMBER = re.compile(r"[+-]?(\d+,\d*|,\d+)")
WHOLE_NUMBER = re.compile(r"[+-]?\d+")


def read_decimal_commas(table: CsvFile, decimal: Optional[str], missing: Callable[[str], bool],
                        keep: Sequence[str] = ()) -> list[str]:
    """Rewrite, in table.rows, the columns written with decimal commas (12,5 for 12.5, as spreadsheets write in
    many locales) with points; return their names. A column qualifies when each cell that is not `missing` is such
    a number or a whole number, at least one with a comma. `decimal` (data.decimal): point reads none; comma reads
    every qualifying column; null reads them only in a file not delimited by commas (where 12,5 cannot be two
    fields). Columns in `keep` (data.categorical_columns) stay as written."""
    if decimal == "point" or (decimal is None and table.delimiter == ","):
        return []
    converted = []
    for position, name in enumerate(table.header):
        if name in keep:
            continue
        present = [cell for cell in (row[position].strip() for row in table.rows) if not missing(cell)]
        if any(COMMA_NUMBER.fullmatch(cell) for cell in present) and all(
                COMMA_NUMBER.fullmatch(cell) or WHOLE_NUMBER.fullmatch(cell) for cell in present):
            for row in table.rows:
                row[position] = row[position].replace(",", ".")
            converted.append(name)
    return converted


def read_table(path, delimiter: Optional[str] = None) -> CsvFile:
    """A CSV file's header and rows, with each row's line. `delimiter` null: detected (see detect_delimiter),
    else a comma. Rows without the header's number of fields are refused, the first MAX_LISTED named."""
    path = Path(path)
    with open(path, newline="", encoding="utf-8-sig") as file:  # -sig: spreadsheets often write a BOM
        text = file.read()
    if delimiter:
        chosen, how = delimiter_character(delimiter), f"data.delimiter={delimiter}"
    else:
        detected = detect_delimiter(text)
        chosen = detected or ","
        how = (f"delimiter {delimiter_name(detected)} detected" if detected else
               "no delimiter among comma, semicolon, tab and | gives every line the header's number of fields; "
               "read with commas")
    reader = csv.reader(io.StringIO(text), delimiter=chosen)
    rows, lines = [], []
    for row in reader:
        if row:
            rows.append(row)
            lines.append(reader.line_num)
    if not rows:
        raise ConfigError(f"data.path: {path} is empty; expected a CSV file with a header row.")
    header, body, lines = [name.strip() for name in rows[0]], rows[1:], lines[1:]
    bad = [(line, len(row)) for line, row in zip(lines, body) if len(row) != len(header)]
    if bad:
        listed = "; ".join(f"line {line}: {fields} fields" for line, fields in bad[:MAX_LISTED])
        more = f" (and {len(bad) - MAX_LISTED} more)" if len(bad) > MAX_LISTED else ""
        hint = _delimiter_hint(text, chosen, len(header))
        raise ConfigError(
            f"{path}: {len(bad)} of {len(body)} rows do not have the header's {len(header)} field(s) "
            f"({how}): {listed}{more}.{hint} Set data.delimiter if the file uses another delimiter, or fix "
            "the lines (a field holding the delimiter needs quotes)."
        )
    if not body:
        raise ConfigError(f"data.path: {path} has a header but no rows.")
    return CsvFile(path, header, body, lines, chosen, _delimiter_hint(text, chosen, len(header)))


def _delimiter_hint(text: str, chosen: str, fields: int) -> str:
    """A sentence naming another delimiter that splits the header into more fields, if one does."""
    first_line = text.split("\n", 1)[0]
    others = {other: len(_parsed(first_line, other)[0]) for other in DELIMITERS if other != chosen and first_line}
    wider = [other for other, count in others.items() if count > fields]
    if not wider:
        return ""
    setting = "tab" if wider[0] == "\t" else f"'{wider[0]}'"
    return f" With data.delimiter={setting} the header has {others[wider[0]]} fields."




def numeric_column(path, column: str, values: list[str], fix: str = "") -> np.ndarray:
    """The cells of one column as float32; the first empty, non-numeric or NaN cell is refused with its line
    (`fix`: what the user can do about a non-numeric cell; by default, drop or encode the column)."""
    numbers = []
    for line, value in enumerate(values, start=2):
        if not value.strip():
            raise ConfigError(f"{path}: column {column!r} has an empty value on line {line}; fill or drop it.")
        try:
            number = float(value)
        except ValueError:
            fix = fix or f"Drop it with data.exclude_columns=[{column}] or encode it as numbers."
            raise ConfigError(f"{path}: column {column!r} is not numeric (line {line}: {value!r}). {fix}") from None
        if math.isnan(number):
            raise ConfigError(
                f"{path}: column {column!r} has a missing value ({value!r}) on line {line}; fill or drop it."
            )
        numbers.append(number)
    return np.array(numbers, dtype="float32")


def cells_listed(cells: list[tuple], what: str) -> str:
    """`what`, counted, then the first MAX_LISTED (line, column, value) cells."""
    listed = "; ".join(f"line {line}, column {column!r}: {value!r}" for line, column, value in cells[:MAX_LISTED])
    more = f" (and {len(cells) - MAX_LISTED} more)" if len(cells) > MAX_LISTED else ""
    return f"{len(cells)} {what}: {listed}{more}"


def lines_listed(lines: list[int]) -> str:
    return ", ".join(map(str, lines[:MAX_LISTED])) + (f" and {len(lines) - MAX_LISTED} more" if len(lines) > MAX_LISTED
                                                        else "")
