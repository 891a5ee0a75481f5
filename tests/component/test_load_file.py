"""``load_file`` numbers rows by their line in the file, empty lines and refused lines included."""

from __future__ import annotations

import gzip

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from components.errors import DataError
from components.sources import base
from components.sources.base import RawFormat, RawTable, blank_lines, load_file

SPEC = RawTable("interactions", {"user_id": "BIGINT", "item_id": "BIGINT", "ts": "BIGINT"}, ("user_id", "item_id", "ts"))
TEXTS = ["a\n\nb\n", "\na\n", "a\r\n\r\nb\r\n\r\n", "a\nb\n", "a\n\n\n\nb", "", "a\nb\n\n"]
EXPECTED = [[2], [1], [2, 4], [], [2, 3, 4], [], [3]]


@pytest.mark.parametrize("chunk", [1, 2, 3, 1 << 24])
def test_blank_lines_are_found_across_chunk_boundaries(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(base, "_CHUNK", chunk)
    for i, (text, expected) in enumerate(zip(TEXTS, EXPECTED)):
        path = tmp_path / f"{i}.txt"
        path.write_bytes(text.encode())
        assert blank_lines(path) == expected, text


def test_blank_lines_of_gzip_and_utf16_files(tmp_path):
    (tmp_path / "a.csv.gz").write_bytes(gzip.compress(b"h\n1\n\n2\n"))
    (tmp_path / "b.csv").write_bytes("h\n1\n\n2\n".encode("utf-16"))
    assert blank_lines(tmp_path / "a.csv.gz") == [3]
    assert blank_lines(tmp_path / "b.csv", "utf-16") == [3]


def _write(tmp_path, lines: list[str]):
    path = tmp_path / "interactions.csv"
    path.write_text("user_id,item_id,ts\n" + "\n".join(lines) + "\n")
    return path


def test_a_bad_value_after_empty_lines_names_its_own_line(tmp_path):
    path = _write(tmp_path, ["1,2,3", "", "", "1,3,4", "1,x,5"])  # lines 2, 3 (empty), 4, 5, 6
    with pytest.raises(DataError, match=r"column 'item_id' line 6: 'x' is not a valid bigint"):
        load_file(duckdb.connect(), path, SPEC)


def test_skipped_and_kept_rows_keep_their_lines_around_empty_and_short_lines(tmp_path):
    path = _write(tmp_path, ["1,2,3", "", "1,2", "1,x,5", "", "2,3,6", "7"])  # lines 2..8
    con = duckdb.connect()
    skipped = load_file(con, path, SPEC, bad_rows="skip")
    assert skipped == {"file": "interactions.csv", "table": "interactions", "rows": 3, "lines": [4, 5, 8],
                       "reasons": {"missing columns": 2, "item_id: not a valid bigint": 1}}
    assert con.execute("SELECT line, item_id FROM raw_interactions ORDER BY line").fetchall() == [(2, 2), (7, 3)]


def test_a_line_short_of_several_fields_fails_once_with_its_line(tmp_path):
    path = tmp_path / "x.tsv"
    path.write_text("1\t2\t3\n\n4\n")
    fmt = RawFormat(delim="\t", header=False, names=("user_id", "item_id", "ts"))
    with pytest.raises(DataError, match=r"x.tsv: line 3: .*\(1 such lines"):
        load_file(duckdb.connect(), path, SPEC, fmt)


def test_parquet_rows_are_numbered_in_order_whatever_their_text_holds(tmp_path):
    path = tmp_path / "interactions.parquet"
    notes = ["a\n\nb", "c\n\n\nd", "e", "f"]  # line breaks inside values: not lines of a text file
    pq.write_table(pa.table({"user_id": [1, 2, 3, 4], "item_id": [1, 1, 1, 1], "ts": [1, 2, 3, 4], "note": notes}), path)
    con = duckdb.connect()
    load_file(con, path, SPEC)
    assert con.execute("SELECT line FROM raw_interactions ORDER BY user_id").fetchall() == [(1,), (2,), (3,), (4,)]
