"""Writing and reading the Parquet tables with exactly the columns and dtypes of :mod:`data.schema`.

Writing refuses a missing or unexpected column, so a simulator change cannot silently break a consumer.
Files are written deterministically (fixed row order, fixed writer options), so the same seed gives
byte-identical files and the data fingerprint is a plain sha256 over them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from data.schema import TABLES
from features.bundle import sha256_file


class TableSchemaError(ValueError):
    """Columns handed to the writer, or found in a file, differ from :data:`data.schema.TABLES`."""


def arrow_schema(name: str) -> pa.Schema:
    if name not in TABLES:
        raise TableSchemaError(f"unknown table {name!r}; known: {', '.join(TABLES)}")
    return pa.schema([(col, pa.type_for_alias(dtype)) for col, dtype in TABLES[name].items()])


def to_arrow(name: str, columns: Mapping[str, np.ndarray]) -> pa.Table:
    """Cast numpy columns to the table's Arrow schema; columns must match the schema exactly."""
    schema = arrow_schema(name)
    missing = [c for c in schema.names if c not in columns]
    extra = [c for c in columns if c not in schema.names]
    if missing or extra:
        raise TableSchemaError(f"table {name}: missing columns {missing}, unexpected columns {extra}")
    arrays = []
    for field in schema:
        values = np.asarray(columns[field.name])
        if pa.types.is_string(field.type):
            arrays.append(pa.array(values.astype(object), type=field.type))
        else:
            arrays.append(pa.array(values.astype(field.type.to_pandas_dtype()), type=field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def write_table(out_dir: str | Path, name: str, columns: Mapping[str, np.ndarray]) -> Path:
    path = Path(out_dir) / f"{name}.parquet"
    pq.write_table(to_arrow(name, columns), path, compression="zstd", row_group_size=1 << 20)
    return path


def read_table(data_dir: str | Path, name: str, columns: Iterable[str] | None = None) -> pa.Table:
    """Read one table, checking that it has the schema's columns and types."""
    path = Path(data_dir) / f"{name}.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"table {name} not found at {path}; run `prectr data build --out {data_dir}`")
    table = pq.read_table(path, columns=list(columns) if columns is not None else None)
    expected = arrow_schema(name)
    for field in table.schema:
        if expected.get_field_index(field.name) < 0 or expected.field(field.name).type != field.type:
            raise TableSchemaError(f"{path}: column {field.name} ({field.type}) does not match the schema")
    return table


def fingerprint(paths: Mapping[str, Path]) -> str:
    """sha256 over (table name, file sha256) in table order: one id for the whole dataset."""
    h = hashlib.sha256()
    for name in sorted(paths):
        h.update(f"{name}:{sha256_file(paths[name])}\n".encode())
    return h.hexdigest()
