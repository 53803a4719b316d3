"""Kafka records -> raw rows, without a JVM: one row per record, parsed fields typed, bad input explained.

DuckDB parses each message once into its fields as text; SQL then types them. A field whose
JSON value does not fit its type is null and named in `parse_error`; the record keeps its day
when `ts` itself is readable, so malformed rows reconcile per day.

How a JSON value becomes a field of each type:
- text: a string as is; a number or boolean as its JSON text; an object or array does not fit.
- bigint: an integer, or a string holding one (surrounding spaces allowed), within 64 bits.
- double: a number, or a string holding one or NaN / Infinity / INF (any case, signed); a number
  beyond the double range does not fit.
- boolean: true / false, or a string or number reading t, true, y, yes, 1 / f, false, n, no, 0.

`rescued` keeps what the contract does not describe, as a JSON object (null when there is none): every
field outside it, and every contract field that arrives as another JSON kind than its producers send
(schemas.json_kinds), even when it still fits its type. Nothing is read from it; it makes drift seen.

DuckDB reads JSON a little more leniently than the standard: a trailing comma, or a bare NaN or
Infinity, still makes a well-formed message. Of a key given twice, the first value counts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timezone

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from medallion_assets.raw.days import MAX_EPOCH_MS, MIN_EPOCH_MS
from medallion_assets.resources.kafka import RECORD_SCHEMA
from medallion_assets.schemas import event_fields, json_kinds
from medallion_assets.tables import RAW

_INTEGER = r"^\s*[+-]?[0-9]+\s*$"
_DECIMAL = r"^\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*$"
_SPECIAL_DOUBLES = ("nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity")
_TRUE = ("t", "true", "y", "yes", "1")
# DuckDB's json_type of each JSON kind (an explicit JSON null is 'NULL', and never drift).
_DUCKDB_KINDS = {"string": ("VARCHAR",), "number": ("BIGINT", "UBIGINT", "DOUBLE"), "boolean": ("BOOLEAN",)}
_FALSE = ("f", "false", "n", "no", "0")


def empty_records() -> pa.Table:
    """No Kafka records."""
    return RECORD_SCHEMA.empty_table()


def as_text(values: pa.ChunkedArray | pa.Array) -> tuple[pa.Array, pa.Array]:
    """Bytes as text with invalid UTF-8 replaced (U+FFFD), and whether each was valid UTF-8 (null stays null)."""
    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    try:
        return values.cast(pa.string()), pc.is_valid(values)
    except pa.ArrowInvalid:  # rare: find the records that are not UTF-8
        raw = values.to_pylist()
        valid = [None if v is None else _is_utf8(v) for v in raw]
        text = [None if v is None else v.decode("utf-8", "replace") for v in raw]
        return pa.array(text, pa.string()), pc.fill_null(pa.array(valid, pa.bool_()), True)


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _quoted(values: Sequence[str]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def _field_sql(name: str, sql_type: str) -> str:
    """The typed value of one field from its JSON value as text, `_json."name"` (null when absent or JSON null).

    Only a text that starts like an object or array is looked up again in the message, to tell a
    nested value from a string such as "[Untitled]".
    """
    text = f'_json."{name}"'
    if sql_type == "string":
        nested = f"json_type(_text, '$.{name}') IN ('OBJECT', 'ARRAY')"
        return f"CASE WHEN (starts_with({text}, '{{') OR starts_with({text}, '[')) AND {nested} THEN NULL ELSE {text} END"
    if sql_type == "bigint":
        return f"CASE WHEN regexp_full_match({text}, '{_INTEGER}') THEN TRY_CAST({text} AS BIGINT) END"
    if sql_type == "double":
        number = f"TRY_CAST({text} AS DOUBLE)"
        return (
            f"CASE WHEN regexp_full_match({text}, '{_DECIMAL}') THEN CASE WHEN isfinite({number}) THEN {number} END"
            f" WHEN lower(trim({text})) IN ({_quoted(_SPECIAL_DOUBLES)}) THEN {number} END"
        )
    if sql_type == "boolean":
        word = f"lower(trim({text}))"
        return f"CASE WHEN {word} IN ({_quoted(_TRUE)}) THEN true WHEN {word} IN ({_quoted(_FALSE)}) THEN false END"
    raise ValueError(f"no JSON reading for {sql_type} field {name}")


def _rescued_sql(topic: str) -> str:
    """`rescued` of a well-formed message: its fields outside the contract and those of another JSON kind.

    One more parse finds each contract field's kind (`_kinds`, in field order) and counts the keys;
    only a message with drift is parsed again to build the object.
    """
    kinds = json_kinds(topic)
    drifted = [
        f"_kinds[{i}] NOT IN ({_quoted(['NULL', *(k for kind in allowed for k in _DUCKDB_KINDS[kind])])})"
        for i, allowed in enumerate(kinds.values(), start=1)
    ]
    removed = "{" + ", ".join(f'"{name}": null' for name in kinds) + "}"  # a merge patch removing the contract's fields
    kept_back = ", ".join(
        f"""'{name}', CASE WHEN {test} THEN json_extract(_text, '$."{name}"') END""" for name, test in zip(kinds, drifted)
    )
    return (
        f"CASE WHEN len(json_keys(_text)) > list_count(_kinds) OR {' OR '.join(drifted)} THEN "
        f"nullif(json_merge_patch(json_merge_patch(_text, '{removed}'), json_object({kept_back})), '{{}}') END"
    )


def _parse_sql(topic: str) -> str:
    """The query turning `records` (with `_text`, `_utf8`) into the topic's typed fields and parse_error."""
    fields = {name: dtype.simpleString() for name, dtype in event_fields(topic).items()}
    struct = "{" + ", ".join(f'"{name}": "VARCHAR"' for name in fields) + "}"
    typed = ",\n      ".join(f'{_field_sql(name, sql_type)} AS "{name}"' for name, sql_type in fields.items())
    misfits = ", ".join(f"""CASE WHEN _json."{name}" IS NOT NULL AND "{name}" IS NULL THEN '{name}' END""" for name in fields)
    paths = "[" + ", ".join(f"""'$."{name}"'""" for name in fields) + "]"
    return f"""
SELECT * EXCLUDE (_empty, _utf8, _json, _misfits, _text, _kinds),
  CASE WHEN _empty THEN 'empty message'
       WHEN NOT _utf8 THEN 'not UTF-8'
       WHEN _json IS NULL THEN 'invalid JSON object'
       WHEN _misfits <> '' THEN 'wrong type: ' || _misfits END AS parse_error,
  CASE WHEN _json IS NOT NULL THEN {_rescued_sql(topic)} END AS rescued,
  CASE WHEN ts BETWEEN {MIN_EPOCH_MS} AND {MAX_EPOCH_MS} THEN CAST(epoch_ms(ts) AS DATE) END AS event_date
FROM (
  SELECT *, concat_ws(',', {misfits}) AS _misfits
  FROM (
    SELECT _offset, _empty, _utf8, _json, _text,
      CASE WHEN _json IS NOT NULL THEN json_type(_text, {paths}) END AS _kinds,
      {typed}
    FROM (
      SELECT _offset, _empty, _utf8, _text,
        CASE WHEN _utf8 AND starts_with(ltrim(_text), '{{') THEN TRY(json_transform(_text, '{struct}')) END AS _json
      FROM records
    )
  )
)
"""


def parse_records(records: pa.Table, topic: str, ingested_at: datetime | None = None) -> pa.Table:
    """One raw row per Kafka record (RECORD_SCHEMA), stamped `ingested_at` (default now), in raw's schema."""
    value, utf8 = as_text(records["value"])
    key, _ = as_text(records["key"])
    frame = pa.table(
        {"_offset": records["offset"], "_empty": pc.is_null(records["value"]), "_text": value, "_utf8": utf8}
    )
    with duckdb.connect(config={"preserve_insertion_order": True}) as con:  # rows stay in record order
        con.register("records", frame)
        fields = con.sql(_parse_sql(topic)).to_arrow_table()
    if not fields["_offset"].equals(records["offset"]):
        raise RuntimeError("the parsed rows came back in another order than the records")
    at = (ingested_at or datetime.now(timezone.utc)).astimezone(timezone.utc)
    schema = RAW[topic].arrow_schema()
    columns = {
        "kafka_topic": records["topic"],
        "kafka_partition": records["partition"],
        "kafka_offset": records["offset"],
        "kafka_timestamp": records["timestamp"],
        "kafka_key": key,
        "value": value,
        "value_bytes": pc.if_else(utf8, pa.scalar(None, pa.binary()), records["value"]),
        **{name: fields[name] for name in event_fields(topic)},
        "parse_error": fields["parse_error"],
        "rescued": fields["rescued"],
        "event_date": fields["event_date"],
        "ingestion_timestamp": pa.repeat(pa.scalar(at, schema.field("ingestion_timestamp").type), records.num_rows),
    }
    return pa.table([columns[f.name] for f in schema], schema=schema)


def parse_record_batches(topic: str, ingested_at: datetime, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Raw rows of the records of Spark's Kafka source, a batch at a time (`mapInArrow` in Spark's Python workers)."""
    for batch in batches:
        columns = [pc.cast(batch.column(f.name), f.type) for f in RECORD_SCHEMA]  # Spark's timestamps carry the session zone
        yield from parse_records(pa.Table.from_arrays(columns, schema=RECORD_SCHEMA), topic, ingested_at).to_batches()
