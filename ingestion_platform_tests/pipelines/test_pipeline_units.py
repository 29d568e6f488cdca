"""Pure parts of the pipelines: the filter expression language, CSV detection, aggregates over batches."""

from __future__ import annotations

import pyarrow as pa
import pytest

from ingestion_platform.components.pipeline import schema
from ingestion_platform.components.pipeline.csv_detect import detect_encoding, sniff_delimiter
from ingestion_platform.components.pipeline.expr import ExpressionError, parse_expression
from ingestion_platform.components.pipeline.extract import ROW, Batch
from ingestion_platform.components.pipeline.transform import StepCounter, apply_steps

TABLE = pa.table(
    {
        "value": [1.5, -2.0, 3.0, None, 10.0],
        "sector": ["Energy", "X", "Transport", "Energy", "Waste"],
        "code": ["EF1", "a", "EF2", None, "ZZ"],
    }
)


@pytest.mark.parametrize(
    ("text", "rows"),
    [
        ("value > 0 and sector in ['Energy', 'Transport']", 2),
        ("not is_null(value)", 4),
        ("starts_with(code, 'EF') or value * 2 <= -4", 3),
        ("value is not null and sector != 'X'", 3),
        ("0 < value < 3", 1),
        ("lower(sector) == 'energy'", 2),
        ("sector not in ['Energy']", 3),
        ("col('value') >= 10", 1),
        ("length(code) == 2 and contains(code, 'Z')", 1),
    ],
)
def test_filter_expressions(text: str, rows: int) -> None:
    assert TABLE.filter(parse_expression(text)).num_rows == rows


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("__import__('os').system('id')", "is not allowed"),
        ("value.__class__", "is not allowed"),
        ("code[0] == 'E'", "is not allowed"),
        ("(lambda: 1)()", "is not allowed"),
        ("open('/etc/passwd')", "unknown function 'open'"),
        ("value >", "cannot parse"),
        ("_private > 1", "reserved"),
        ("[x for x in code]", "is not allowed"),
        ("", "empty"),
    ],
)
def test_unsafe_or_broken_expressions_are_refused(text: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        parse_expression(text)


def test_encoding_detection() -> None:
    assert detect_encoding("é;ü".encode()) == "utf-8"
    assert detect_encoding(b"\xef\xbb\xbfa,b") == "utf-8-sig"
    assert detect_encoding("Décharge".encode("cp1252")) == "cp1252"
    assert detect_encoding("abcé".encode()[:-1]) == "utf-8"  # a character cut by the sample's end


def test_delimiter_sniffing() -> None:
    assert sniff_delimiter("a;b;c\n1;2,5;3\n") == ";"
    assert sniff_delimiter('a,b\n"x;y",2\n') == ","
    assert sniff_delimiter("a\tb\n1\t2\n") == "\t"
    assert sniff_delimiter("a|b|c\n1|2|3\n4|5") == "|"


def test_aggregate_over_many_batches_equals_one_pass() -> None:
    """Partial aggregates merged across batches (and compacted) give the figures of the whole input."""
    n = 20_000
    data = pa.table(
        {
            "g": [f"g{i % 7}" for i in range(n)],
            "v": [float(i % 101) for i in range(n)],
            "s": [f"s{i % 13}" for i in range(n)],
            ROW: list(range(1, n + 1)),
        }
    )
    step = schema.Step.model_validate(
        {"aggregate": {"group_by": ["g"], "metrics": {"n": "count()", "total": "sum(v)", "avg": "mean(v)",
                                                         "lo": "min(v)", "hi": "max(v)", "kinds": "count_distinct(s)"}}}
    )  # fmt: skip
    batches = (Batch("x", b) for b in data.to_batches(max_chunksize=997))
    counters: list[StepCounter] = []
    out = pa.Table.from_batches([b.data for b in apply_steps([step], batches, None, counters, ".")])  # type: ignore[arg-type]
    expected = data.group_by("g").aggregate(
        [("v", "count"), ("v", "sum"), ("v", "mean"), ("v", "min"), ("v", "max"), ("s", "count_distinct")]
    )
    exp = {r["g"]: r for r in expected.to_pylist()}
    got = {r["g"]: r for r in out.to_pylist()}
    assert set(got) == set(exp)
    for g, row in got.items():
        assert row["n"] == exp[g]["v_count"] and row["total"] == exp[g]["v_sum"]
        assert row["avg"] == pytest.approx(exp[g]["v_mean"]) and row["kinds"] == exp[g]["s_count_distinct"]
        assert (row["lo"], row["hi"]) == (exp[g]["v_min"], exp[g]["v_max"])
    assert counters[0].rows_in == n and counters[0].rows_out == 7


def test_aggregate_without_groups() -> None:
    data = pa.table({"v": [1, 2, 2, None], "s": ["a", "b", "b", None], ROW: [1, 2, 3, 4]})
    step = schema.Step.model_validate(
        {"aggregate": {"metrics": {"n": "count()", "nv": "count(v)", "d": "count_distinct(s)", "t": "sum(v)"}}}
    )
    out = list(apply_steps([step], iter([Batch("x", data.to_batches()[0])]), None, [], "."))  # type: ignore[arg-type]
    assert pa.Table.from_batches([b.data for b in out]).to_pylist() == [{"n": 4, "nv": 3, "d": 2, "t": 5}]
