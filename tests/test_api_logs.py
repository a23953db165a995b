"""Request ids and log lines: every request has an id, sent back and written in its log
lines; ``recommender serve --log-format json`` makes every line a JSON object."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.asgi.telemetry import REQUEST_ID, REQUEST_LOGGER
from api.server import JsonFormatter, ServerProcess, serve_log_config
from tests.test_api import shared_tiny_index


@pytest.fixture(scope="module")
def tiny_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_tiny_index(tmp_path_factory)


@pytest.fixture(scope="module")
def client(tiny_index: Path) -> TestClient:
    return TestClient(create_app(tiny_index, warm=False))


def test_every_answer_carries_a_request_id_that_its_log_line_names(client, caplog):
    with caplog.at_level(logging.INFO, logger=REQUEST_LOGGER):
        answers = [
            client.get("/similar/NCT00000001"),  # the fast path
            client.get("/similar/NCT09999999"),  # an error, through the route
            client.post("/similar", json={"text": "asthma"}),
        ]
    ids = [a.headers["x-request-id"] for a in answers]
    assert len(set(ids)) == 3 and all(len(i) == 16 for i in ids)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == REQUEST_LOGGER]
    assert [line["request_id"] for line in lines] == ids
    assert [r.fields["request_id"] for r in caplog.records if r.name == REQUEST_LOGGER] == ids


@pytest.mark.parametrize(
    ("sent", "kept"),
    [("abc-123.x:9", True), ("a" * 64, True), ("a" * 65, False), ('x" y', False), ("", False)],
)
def test_a_clients_request_id_is_kept_when_it_is_a_plain_token(client, sent, kept):
    got = client.get("/health", headers={"X-Request-ID": sent}).headers["x-request-id"]
    assert (got == sent) is kept and got


def record(message: str = "hello %s", *args, **extra) -> logging.LogRecord:
    made = logging.LogRecord("api.test", logging.WARNING, __file__, 1, message, args, None)
    made.__dict__.update(extra)
    return made


def test_the_json_formatter_writes_one_object_per_line():
    formatter = JsonFormatter()
    line = json.loads(formatter.format(record("hello %s", "you")))
    assert line["message"] == "hello you" and line["level"] == "WARNING"
    assert line["logger"] == "api.test" and line["time"].endswith("+00:00")
    assert "request_id" not in line
    token = REQUEST_ID.set("req-1")
    try:
        fields = {"method": "GET", "status": 200, "request_id": "req-1"}
        line = json.loads(formatter.format(record("{...}", fields=fields)))
        assert line["method"] == "GET" and line["status"] == 200 and "message" not in line
        try:
            raise ValueError("boom")
        except ValueError:
            failed = record("failed")
            failed.exc_info = sys.exc_info()
        line = json.loads(formatter.format(failed))
        assert line["request_id"] == "req-1" and "ValueError: boom" in line["exception"]
    finally:
        REQUEST_ID.reset(token)


def test_json_log_config_covers_every_logger():
    config = serve_log_config("json")
    assert all(f == {"()": "api.server.logs.JsonFormatter"} for f in config["formatters"].values())
    assert config["root"]["handlers"] == ["default"]
    assert config["loggers"]["uvicorn.error"]["level"] == "INFO"
    assert serve_log_config("text")["formatters"]["request"] == {"format": "%(message)s"}
    with pytest.raises(ValueError, match="'text' or 'json'"):
        serve_log_config("yaml")


@pytest.mark.server
def test_serve_with_json_logs_writes_only_json_lines(tiny_index):
    with ServerProcess(tiny_index, serve_args=["--log-format", "json"]) as server:
        with httpx.Client(base_url=server.url) as http:
            answer = http.get("/similar/NCT00000001", headers={"X-Request-ID": "trace-42"})
            assert answer.headers["x-request-id"] == "trace-42"
        server.stop()
        log = server.log()
    lines = [json.loads(line) for line in log.splitlines() if line.strip()]  # each one JSON
    loggers = {line["logger"] for line in lines}
    assert {"uvicorn.error", "api.server.warmup", REQUEST_LOGGER} <= loggers, loggers
    assert any(line.get("message", "").startswith("Uvicorn running on") for line in lines)
    requests = [line for line in lines if line["logger"] == REQUEST_LOGGER]
    (request,) = [line for line in requests if line["path"] == "/similar/NCT00000001"]
    assert request["request_id"] == "trace-42" and request["status"] == 200
