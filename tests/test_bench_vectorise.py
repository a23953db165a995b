"""``python -m bench.vectorise --only queries`` on the committed sample."""

import json
from pathlib import Path

from bench.vectorise import main, thin_queries
from recommender.ingest import read_records

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample" / "ctg-studies-sample.json.zip"


def test_thin_records_read_as_queries_are_timed_against_their_rows():
    records, _ = read_records([SAMPLE])
    result = thin_queries(records, jobs=1)
    thin = [r for r in records if not r.conditions and not r.interventions]
    assert 0 < result["records"] == len(thin) < len(records)
    assert result["transform_seconds"] >= 0 and result["transform_queries_seconds"] >= 0
    # The queries also read their prose into the two list groups their rows lack.
    assert result["nnz"] > result["rows_nnz"] > 0


def test_the_queries_side_prints_one_json_line(capsys):
    main(["--only", "queries", "--jobs", "1", "--source", str(SAMPLE)])
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["side"] == "queries" and line["records"] > 0
