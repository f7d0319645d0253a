"""Streaming downloads of filtered entries, as CSV or NDJSON, in the one wire format."""

import csv
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from django.db.models import QuerySet

from .serializers import ENTRY_COLUMNS, entry_to_json, rfc3339

FORMATS = {"csv": "text/csv; charset=utf-8", "ndjson": "application/x-ndjson"}
CHUNK_SIZE = 2000

# ``entry_to_json``'s nested objects, flattened to ``<object>_<field>`` columns in CSV.
_NESTED = {"target": ("type", "id", "name"), "api_key": ("id", "name")}
# Free-form JSON values: one cell each, JSON-encoded.
_JSON_CELLS = ("inputs", "outputs", "changes")
# A cell starting with one of these is a formula to spreadsheet programs (CSV injection).
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_header() -> list[str]:
    """The CSV columns: ``entry_to_json``'s keys, nested objects flattened, in the same order."""
    sample = entry_to_json(
        dict.fromkeys(ENTRY_COLUMNS) | {"created_at": datetime(2000, 1, 1, tzinfo=UTC)}
    )
    header: list[str] = []
    for key in sample:
        if key in _NESTED:
            header.extend(f"{key}_{sub}" for sub in _NESTED[key])
        else:
            header.append(key)
    return header


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_PREFIXES):
        return "'" + value
    return value


def flatten(entry: dict[str, Any]) -> list[Any]:
    """One CSV row of an ``entry_to_json`` dict, in ``csv_header()`` order."""
    row: list[Any] = []
    for key, value in entry.items():
        if key in _NESTED:
            row.extend(_cell((value or {}).get(sub)) for sub in _NESTED[key])
        elif key in _JSON_CELLS:
            row.append(json.dumps(value, sort_keys=True))
        else:
            row.append(_cell(value))
    return row


class _Echo:
    """A file-like object whose ``write`` hands the line back to the caller."""

    def write(self, value: str) -> str:
        return value


def entry_rows(queryset: QuerySet) -> Iterator[dict[str, Any]]:
    """The entries of ``queryset`` as wire-format dicts, fetched ``CHUNK_SIZE`` at a time."""
    for values in queryset.values(*ENTRY_COLUMNS).iterator(chunk_size=CHUNK_SIZE):
        yield entry_to_json(values)


def csv_lines(entries: Iterable[dict[str, Any]]) -> Iterator[str]:
    """Header, then one CSV line per entry."""
    writer = csv.writer(_Echo())
    yield writer.writerow(csv_header())
    for entry in entries:
        yield writer.writerow(flatten(entry))


def ndjson_lines(entries: Iterable[dict[str, Any]]) -> Iterator[str]:
    """One JSON object per line."""
    for entry in entries:
        yield json.dumps(entry, separators=(",", ":")) + "\n"


def stream(queryset: QuerySet, fmt: str) -> Iterator[str]:
    """The download body of ``queryset`` in ``fmt`` (``csv`` or ``ndjson``), lazily."""
    entries = entry_rows(queryset)
    return csv_lines(entries) if fmt == "csv" else ndjson_lines(entries)


def filename(fmt: str, now: datetime) -> str:
    """``audit-log-20240131T235959Z.csv``."""
    stamp = rfc3339(now)[:19].replace("-", "").replace(":", "")
    return f"audit-log-{stamp}Z.{fmt}"
