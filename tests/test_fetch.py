"""``recommender fetch`` against a local stand-in for the registry's API v2.

The server runs on 127.0.0.1 in a thread and pages through hand-made studies the way
the registry does (``pageSize``, opaque ``nextPageToken``, ``countTotal``); faults
(429 with Retry-After, 500, a truncated body, invalid JSON) are injected per page. No
test touches the internet, and the client code is the one used against the registry.
"""

from __future__ import annotations

import gzip
import json
import threading
import zipfile
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from recommender.cli import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_OK, main
from recommender.ingest import (
    DEFAULT_PAGE_SIZE,
    STATE_FILE,
    FetchError,
    FetchQuery,
    FetchUsageError,
    parse_day,
    read_records,
    read_state,
    snapshot_problem,
)
from recommender.ingest.registry import RegistryClient, fetch_studies, retry_after_seconds
from recommender.ingest.registry.client import check_page
from recommender.pipelines import build_index
from tests.factories import study_json

DATA_TIMESTAMP = "2025-01-15T09:00:05"


def dated_study(number: int, title: str, updated: str = "2024-06-01") -> dict:
    study = study_json(f"NCT{number:08d}", title, summary=f"{title} in adults.")
    study["protocolSection"]["statusModule"] = {"lastUpdatePostDateStruct": {"date": updated}}
    return study


STUDIES = [dated_study(n, f"Trial {n} of drug {n % 3} for asthma") for n in range(1, 11)]


class FakeRegistry:
    """Pages of ``studies`` served like ``/api/v2/studies``, with injectable faults.

    ``faults[offset]`` lists what the next requests for the page starting at study
    ``offset`` get instead of that page, one fault per request: ``"429"``, ``"500"``,
    ``"truncate"`` (a body cut short of its Content-Length), ``"garbage"`` (cut
    short but with a matching length: invalid JSON) or ``"400"``.
    """

    def __init__(self, studies: list[dict], *, compress: bool = False) -> None:
        self.studies = studies
        self.compress = compress
        self.faults: dict[int, list[str]] = defaultdict(list)
        self.requests: list[dict[str, str]] = []
        self.base_url = ""

    def respond(self, path: str, params: dict[str, str]) -> tuple[int, dict, bytes]:
        self.requests.append({"path": path, **params})
        if path == "/api/v2/version":
            return 200, {}, json.dumps({"apiVersion": "2.0.3", "dataTimestamp": DATA_TIMESTAMP})
        if path != "/api/v2/studies":
            return 404, {}, "not found"
        offset = int(params.get("pageToken", "t0")[1:])
        if self.faults[offset]:
            return self._fault(self.faults[offset].pop(0))
        size = int(params.get("pageSize", "10"))
        page: dict = {"studies": self.studies[offset : offset + size]}
        if params.get("countTotal") == "true":
            page["totalCount"] = len(self.studies)
        if offset + size < len(self.studies):
            page["nextPageToken"] = f"t{offset + size}"
        return 200, {}, json.dumps(page)

    @staticmethod
    def _fault(kind: str) -> tuple[int, dict, str]:
        if kind == "429":
            return 429, {"Retry-After": "7"}, "Too many requests"
        if kind in ("500", "400"):
            return int(kind), {}, f"HTTP {kind} from the fake registry"
        return 200, {"X-Fault": kind}, json.dumps({"studies": STUDIES})


def _handler(registry: FakeRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            status, headers, text = registry.respond(parts.path, dict(parse_qsl(parts.query)))
            body = text.encode("utf-8")
            fault = headers.pop("X-Fault", None)
            if registry.compress and "gzip" in self.headers.get("Accept-Encoding", ""):
                body = gzip.compress(body)
                headers["Content-Encoding"] = "gzip"
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name, value)
            cut = body[: len(body) // 2]
            self.send_header("Content-Length", str(len(cut if fault == "garbage" else body)))
            self.end_headers()
            self.wfile.write(cut if fault else body)
            self.close_connection = fault is not None

        def log_message(self, *args) -> None:  # keep the test output clean
            pass

    return Handler


@pytest.fixture
def registry(monkeypatch):
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    fake = FakeRegistry(STUDIES)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    fake.base_url = f"http://127.0.0.1:{server.server_port}/api/v2"
    yield fake
    server.shutdown()
    server.server_close()
    thread.join()


class FakeTime:
    """A clock that only moves when slept on: waits are recorded, never spent."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(round(seconds, 3))
        self.now += seconds


def client_for(registry: FakeRegistry, time: FakeTime, **options) -> RegistryClient:
    settings = {"retries": 3, "backoff": 0.5, "requests_per_minute": 0, "timeout": 5} | options
    return RegistryClient(registry.base_url, sleep=time.sleep, clock=time.clock, **settings)


def studies_requests(registry: FakeRegistry) -> list[dict[str, str]]:
    return [r for r in registry.requests if r["path"].endswith("/studies")]


def page_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("page-*.json"))


def test_pages_through_with_tokens_and_writes_api_pages(registry, tmp_path):
    out = tmp_path / "download"
    summary = fetch_studies(out, FetchQuery(page_size=4), client_for(registry, FakeTime()))
    assert page_files(out) == ["page-00001.json", "page-00002.json", "page-00003.json"]
    pages = [json.loads((out / name).read_text()) for name in page_files(out)]
    assert [len(p["studies"]) for p in pages] == [4, 4, 2]
    assert [p.get("nextPageToken") for p in pages] == ["t4", "t8", None]
    assert summary.studies_written == 10 and summary.pages_written == 3
    calls = studies_requests(registry)
    assert [c.get("pageToken") for c in calls] == [None, "t4", "t8"]
    assert all(c["format"] == "json" and c["pageSize"] == "4" for c in calls)
    assert [c.get("countTotal") for c in calls] == ["true", None, None]
    state = read_state(out)
    assert state.done and state.pages == 3 and state.studies == 10 and state.total_count == 10
    assert state.next_page_token is None and state.complete_registry
    assert state.registry_version == {"apiVersion": "2.0.3", "dataTimestamp": DATA_TIMESTAMP}


def test_build_reads_the_download_and_not_the_state_file(registry, tmp_path):
    out = tmp_path / "download"
    fetch_studies(out, FetchQuery(page_size=3), client_for(registry, FakeTime()))
    records, report = read_records([out])
    assert [r.nct_id for r in records] == [f"NCT{n:08d}" for n in range(1, 11)]
    assert records[0].last_update_date == "2024-06-01"
    assert report.skipped == []  # the state file is not taken for a broken study
    built = build_index([out], tmp_path / "index", k=3, n_jobs=1)
    assert built.studies == 10


def test_retries_429_500_truncated_and_invalid_json(registry, tmp_path):
    registry.faults[0] = ["429", "500"]
    registry.faults[4] = ["truncate", "garbage"]
    time = FakeTime()
    logged: list[str] = []
    client = client_for(registry, time, log=logged.append)
    fetch_studies(tmp_path / "d", FetchQuery(page_size=4), client)
    assert len(studies_requests(registry)) == 3 + 4
    # Retry-After (7 s) beats the backoff (0.5 s); then 0.5 * 2**attempt.
    assert time.waits == [7.0, 1.0, 0.5, 1.0]
    assert any("HTTP 429" in line for line in logged)
    assert any("network error" in line for line in logged)
    assert any("invalid JSON" in line for line in logged)
    pages = [json.loads((tmp_path / "d" / n).read_text()) for n in page_files(tmp_path / "d")]
    assert sum(len(p["studies"]) for p in pages) == 10


def test_gzip_responses_are_decoded_and_written_as_json(registry, tmp_path):
    registry.compress = True
    registry.faults[4] = ["truncate"]  # a cut gzip stream is retried too
    fetch_studies(tmp_path / "d", FetchQuery(page_size=4), client_for(registry, FakeTime()))
    first = json.loads((tmp_path / "d" / "page-00001.json").read_text())
    assert first["nextPageToken"] == "t4" and len(first["studies"]) == 4
    assert len(read_records([tmp_path / "d"])[0]) == 10


def test_rate_limit_spaces_requests(registry, tmp_path):
    time = FakeTime()
    client = client_for(registry, time, requests_per_minute=50)
    fetch_studies(tmp_path / "d", FetchQuery(page_size=5), client)
    assert client.requests_made == 3  # /version and two pages
    assert time.waits == [1.2, 1.2]  # 60 s / 50, as the fake clock stands still otherwise


def test_resumes_after_a_failure_without_refetching(registry, tmp_path):
    out = tmp_path / "d"
    registry.faults[8] = ["500"] * 4
    with pytest.raises(FetchError, match="gave up after 4 attempts"):
        fetch_studies(out, FetchQuery(page_size=4), client_for(registry, FakeTime()))
    state = read_state(out)
    assert (state.pages, state.studies, state.next_page_token, state.done) == (2, 8, "t8", False)
    assert page_files(out) == ["page-00001.json", "page-00002.json"]
    assert not list(out.glob(".*tmp*"))  # no half-written page left behind

    registry.requests.clear()
    lines: list[str] = []
    summary = fetch_studies(
        out, FetchQuery(page_size=4), client_for(registry, FakeTime()), log=lines.append
    )
    assert [c.get("pageToken") for c in studies_requests(registry)] == ["t8"]
    assert summary.pages_written == 1 and summary.studies_written == 2
    assert any("resuming after page 2" in line for line in lines)
    state = read_state(out)
    assert state.done and state.studies == 10 and state.resumed == 1
    assert len(read_records([out])[0]) == 10


def test_resumes_after_an_interrupt(registry, tmp_path):
    out = tmp_path / "d"

    def stop_after_first_page(line: str) -> None:
        if line.startswith("page 1:"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        client = client_for(registry, FakeTime())
        fetch_studies(out, FetchQuery(page_size=4), client, log=stop_after_first_page)
    assert read_state(out).pages == 1
    fetch_studies(out, FetchQuery(page_size=4), client_for(registry, FakeTime()))
    assert page_files(out) == ["page-00001.json", "page-00002.json", "page-00003.json"]
    assert [c.get("pageToken") for c in studies_requests(registry)] == [None, "t4", "t8"]


def test_a_finished_download_is_not_fetched_again(registry, tmp_path):
    fetch_studies(tmp_path / "d", FetchQuery(page_size=5), client_for(registry, FakeTime()))
    registry.requests.clear()
    again = client_for(registry, FakeTime())
    summary = fetch_studies(tmp_path / "d", FetchQuery(page_size=5), again)
    assert summary.already_done and studies_requests(registry) == []


def test_restart_and_refusals(registry, tmp_path):
    out = tmp_path / "d"
    fetch_studies(out, FetchQuery(page_size=5), client_for(registry, FakeTime()))
    with pytest.raises(FetchUsageError, match="another query"):
        fetch_studies(out, FetchQuery(cond="asthma"), client_for(registry, FakeTime()))
    fetch_studies(out, FetchQuery(page_size=10), client_for(registry, FakeTime()), restart=True)
    assert page_files(out) == ["page-00001.json"]
    (out / STATE_FILE).unlink()
    with pytest.raises(FetchUsageError, match="pages but no"):
        fetch_studies(out, FetchQuery(page_size=10), client_for(registry, FakeTime()))


def test_query_filters_and_max(registry, tmp_path):
    query = FetchQuery(cond="asthma", term="inhaler", updated_since="2024-01-15", max_studies=5,
                       page_size=4)  # fmt: skip
    fetch_studies(tmp_path / "d", query, client_for(registry, FakeTime()))
    calls = studies_requests(registry)
    assert calls[0]["query.cond"] == "asthma" and calls[0]["query.term"] == "inhaler"
    assert calls[0]["filter.advanced"] == "AREA[LastUpdatePostDate]RANGE[2024-01-15,MAX]"
    assert [c["pageSize"] for c in calls] == ["4", "1"]  # never more than --max
    state = read_state(tmp_path / "d")
    assert state.studies == 5 and state.done and state.stopped_at_max
    assert not state.complete_registry
    assert "filtered or capped" in snapshot_problem(tmp_path / "d")


def test_a_refused_request_is_not_retried(registry, tmp_path):
    registry.faults[0] = ["400"]
    with pytest.raises(FetchUsageError, match="HTTP 400"):
        fetch_studies(tmp_path / "d", FetchQuery(), client_for(registry, FakeTime()))
    assert len(studies_requests(registry)) == 1


def test_unreachable_server_fails_after_retries(tmp_path):
    time = FakeTime()
    client = RegistryClient("http://127.0.0.1:9/api/v2", retries=2, backoff=1, timeout=2,
                            requests_per_minute=0, sleep=time.sleep, clock=time.clock)  # fmt: skip
    with pytest.raises(FetchError, match="network error"):
        fetch_studies(tmp_path / "d", FetchQuery(), client)
    assert time.waits == [1.0, 2.0]


@pytest.mark.parametrize(
    "value, seconds",
    [("7", 7.0), (None, None), ("soon", None), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)],
)
def test_retry_after_values(value, seconds):
    assert retry_after_seconds(value) == seconds


def test_argument_checks():
    assert parse_day(" 2024-01-15 ") == "2024-01-15"
    for bad in ("2024-13-01", "20240115", "yesterday"):
        with pytest.raises(FetchUsageError, match="not a date"):
            parse_day(bad)
    with pytest.raises(FetchUsageError):
        FetchQuery(page_size=1001)
    with pytest.raises(FetchUsageError):
        RegistryClient("ftp://example.org")
    with pytest.raises(ValueError):
        check_page({"studies": "no"})


# -- the command ------------------------------------------------------------------------


def test_cli_fetch_then_build(registry, tmp_path, capsys):
    out = tmp_path / "d"
    args = ["fetch", "--out", str(out), "--base-url", registry.base_url, "--page-size", "4",
            "--rate", "0", "--query.cond", "asthma"]  # fmt: skip
    assert main(args) == EXIT_OK
    captured = capsys.readouterr()
    assert "page 3: 10 studies of 10 (100%); done" in captured.err
    assert f"10 studies in 3 pages to {out}" in captured.out and DATA_TIMESTAMP in captured.out
    assert studies_requests(registry)[0]["query.cond"] == "asthma"
    assert main(["build", "--source", str(out), "--out", str(tmp_path / "ix"), "--quiet",
                 "-k", "2", "--jobs", "1"]) == EXIT_OK  # fmt: skip


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--updated-since", "15/01/2024"], "not a date"),
        (["--max", "0"], "must be at least 1"),
        (["--page-size", "5000"], "1..1000"),
        (["--base-url", "clinicaltrials.gov"], "not an http(s) URL"),
    ],
)
def test_cli_bad_arguments_exit_2(tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) as exc:
        main(["fetch", "--out", str(tmp_path / "d"), *extra])
    assert exc.value.code == EXIT_BAD_INPUT
    assert message in capsys.readouterr().err


def test_cli_network_failure_exits_1_and_keeps_the_state(registry, tmp_path, capsys):
    registry.faults[4] = ["500"] * 5
    args = ["fetch", "--out", str(tmp_path / "d"), "--base-url", registry.base_url,
            "--page-size", "4", "--rate", "0", "--retries", "0"]  # fmt: skip
    assert main(args) == EXIT_FAILURE
    err = capsys.readouterr().err
    assert "HTTP 500" in err and "run the same command again to resume" in err
    assert read_state(tmp_path / "d").pages == 1
    registry.faults.clear()
    assert main(args) == EXIT_OK
    assert read_state(tmp_path / "d").done


def test_cli_refused_request_exits_2(registry, tmp_path, capsys):
    registry.faults[0] = ["400"]
    args = ["fetch", "--out", str(tmp_path / "d"), "--base-url", registry.base_url, "--rate", "0"]
    assert main(args) == EXIT_BAD_INPUT
    assert "refused the request (HTTP 400)" in capsys.readouterr().err


# -- replaying real registry studies -------------------------------------------------------


@pytest.mark.corpus
def test_replays_real_registry_studies(shared_data, monkeypatch, tmp_path):
    with zipfile.ZipFile(shared_data / "ctg-studies.json.zip") as archive:
        names = sorted(n for n in archive.namelist() if n.endswith(".json"))[:25]
        studies = [json.loads(archive.read(n)) for n in names]
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    fake = FakeRegistry(studies, compress=True)
    fake.faults[10] = ["429", "truncate"]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        fake.base_url = f"http://127.0.0.1:{server.server_port}/api/v2"
        fetch_studies(tmp_path / "d", FetchQuery(page_size=10), client_for(fake, FakeTime()))
    finally:
        server.shutdown()
        server.server_close()
    fetched, report = read_records([tmp_path / "d"])
    expected = [s["protocolSection"]["identificationModule"]["nctId"] for s in studies]
    assert [r.nct_id for r in fetched] == sorted(expected) and report.skipped == []


# -- the HTTP client: httpx, retried by tenacity ----------------------------------------------


def test_transport_errors_are_retried_through_httpx():
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if len(calls) == 1:
            raise httpx.ConnectError("connection refused", request=request)
        if len(calls) == 2:
            raise httpx.ReadTimeout("timed out", request=request)
        return httpx.Response(200, json={"apiVersion": "2.0.3"})

    time, logged = FakeTime(), []
    client = RegistryClient("https://registry.test/api/v2", retries=2, backoff=1,
                            requests_per_minute=0, sleep=time.sleep, clock=time.clock,
                            log=logged.append, transport=httpx.MockTransport(handler))  # fmt: skip
    with client:
        data, _ = client.get_json("/version")
    assert data == {"apiVersion": "2.0.3"} and calls == ["/api/v2/version"] * 3
    assert time.waits == [1.0, 2.0]
    assert logged[0] == "network error (connection refused); retrying in 1.0 s (1/2)"
    assert logged[1].startswith("network error (timed out); retrying in 2.0 s (2/2)")


def test_retry_after_is_capped_by_max_wait():
    responses = iter(
        [httpx.Response(503, headers={"Retry-After": "3600"}), httpx.Response(200, json={})]
    )
    transport = httpx.MockTransport(lambda _request: next(responses))
    time = FakeTime()
    client = RegistryClient("https://registry.test/api/v2", retries=1, max_wait=60,
                            requests_per_minute=0, sleep=time.sleep, clock=time.clock,
                            transport=transport)  # fmt: skip
    assert client.get_json("/version")[0] == {}
    assert time.waits == [60.0]


def test_pages_default_to_200_studies(registry, tmp_path):
    assert FetchQuery().page_size == DEFAULT_PAGE_SIZE == 200
    fetch_studies(tmp_path / "d", FetchQuery(), client_for(registry, FakeTime()))
    assert studies_requests(registry)[0]["pageSize"] == "200"


def test_a_page_too_large_for_build_is_named(registry, tmp_path, monkeypatch):
    monkeypatch.setattr("recommender.ingest.registry.download.DEFAULT_MAX_FILE_BYTES", 500)
    lines: list[str] = []
    fetch_studies(tmp_path / "d", FetchQuery(page_size=4), client_for(registry, FakeTime()),
                  log=lines.append)  # fmt: skip
    warnings = [line for line in lines if line.startswith("warning: page-")]
    assert warnings and "over the 500 bytes that `build` and `update` read" in warnings[0]
    assert "--max-file-size" in warnings[0] and "--page-size" in warnings[0]
