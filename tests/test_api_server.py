"""The real server: ``recommender serve`` in a child process, spoken to over loopback HTTP."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import httpx
import pytest

from api.server import ServerProcess
from api.server.launch import LOOPBACK
from tests.test_api import shared_tiny_index

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def tiny_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_tiny_index(tmp_path_factory)


@pytest.fixture(scope="module")
def server(tiny_index: Path):
    with ServerProcess(tiny_index, env={"RECOMMENDER_ADMIN_TOKEN": "server-token"}) as running:
        yield running


def test_served_over_http(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        assert http.get("/health").json() == {"status": "ok"}
        assert http.get("/ready").json()["studies"] == 9
        similar = http.get("/similar/NCT00000001", params={"k": 2})
        assert similar.status_code == 200
        assert [r["nct_id"] for r in similar.json()["results"]] == ["NCT00000002", "NCT00000003"]
        posted = http.post("/similar", json={"conditions": ["Breast Cancer"], "k": 2})
        assert {r["nct_id"] for r in posted.json()["results"]} == {"NCT00000007", "NCT00000008"}
        missing = http.get("/similar/NCT09999999")
        assert missing.status_code == 404
        assert "is not in this index (built from 9 studies" in missing.json()["detail"]
        assert http.get("/similar/NCT1").status_code == 422
        assert '<ol class="results"' in http.get("/", params={"q": "NCT00000007"}).text


def test_oversized_body_over_http(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        response = http.post("/similar", json={"text": "x" * 70_000})
        assert response.status_code == 413
        assert "larger than the limit" in response.json()["detail"]
        assert http.get("/health").status_code == 200  # and the server goes on


def test_reload_over_http(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.post("/admin/reload").status_code == 401
        response = http.post("/admin/reload", headers={"Authorization": "Bearer server-token"})
        assert response.status_code == 200
        assert response.json()["reloaded"] is True


def test_two_workers_serve(tiny_index: Path) -> None:
    with ServerProcess(tiny_index, workers=2) as running:
        with httpx.Client(base_url=running.url, timeout=10) as http:
            for number in range(1, 10):
                response = http.get(f"/similar/NCT{number:08d}")
                assert response.status_code == 200
        code = running.stop()
    assert code == 0, running.log()


def test_server_stops_cleanly(tiny_index: Path) -> None:
    running = ServerProcess(tiny_index).start()
    # Uvicorn shuts down gracefully on SIGTERM, then re-raises the signal, so a clean
    # stop of a single worker is "killed by SIGTERM" after "Finished server process".
    assert running.stop() in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in running.log()
    assert "Finished server process" in running.log()


def test_latency_benchmark_runs(tiny_index: Path) -> None:
    from bench.api_latency import main

    lines: list[str] = []
    code = main(
        ["--index", str(tiny_index), "--requests", "20", "--concurrency", "2", "--workers", "1"],
        log=lines.append,
    )
    assert code == 0, "\n".join(lines)
    table = "\n".join(lines)
    assert "GET /similar/{id}" in table and "GET /health (floor)" in table
    assert "GET /?q={id} (page)" in table
    assert "of the /health floor" in table and "the page takes" in table


# -- clients that are slow, idle or ambiguous, on raw sockets ------------------------------

TIMEOUT = 1.0  # the server's header and body deadlines in these tests
MAX_CONNECTIONS = 3


@pytest.fixture(scope="module")
def strict_server(tiny_index: Path):
    limits = ["--header-timeout", str(TIMEOUT), "--body-timeout", str(TIMEOUT),
              "--max-connections", str(MAX_CONNECTIONS)]  # fmt: skip
    with ServerProcess(tiny_index, serve_args=limits) as running:
        yield running


def connect(server: ServerProcess) -> socket.socket:
    return socket.create_connection((LOOPBACK, server.port), timeout=10)


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (10 s at most)."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def read_response(sock: socket.socket) -> bytes:
    """One whole response with a Content-Length, on a connection that stays open."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.lower().split(b"\r\n")
        if line.startswith(b"content-length:")
    )  # fmt: skip
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def closed_within(sock: socket.socket, seconds: float) -> tuple[bytes, float]:
    started = time.monotonic()
    received = read_until_closed(sock)
    elapsed = time.monotonic() - started
    assert elapsed < seconds, f"still open after {elapsed:.1f} s"
    return received, elapsed


def test_half_sent_headers_are_cut_off(strict_server: ServerProcess) -> None:
    with connect(strict_server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n")  # no blank line: stalls
        received, elapsed = closed_within(sock, TIMEOUT + 2)
    assert elapsed > TIMEOUT - 0.2
    assert received.startswith(b"HTTP/1.1 408 ")
    assert b"the request headers did not arrive within 1 seconds" in received


def test_a_connection_that_sends_nothing_is_cut_off(strict_server: ServerProcess) -> None:
    with connect(strict_server) as sock:
        received, _ = closed_within(sock, TIMEOUT + 2)
    assert received.startswith(b"HTTP/1.1 408 ")


def test_a_stalled_body_is_cut_off(strict_server: ServerProcess) -> None:
    with connect(strict_server) as sock:
        sock.sendall(
            b"POST /similar HTTP/1.1\r\nHost: localhost\r\ncontent-type: application/json\r\n"
            b'content-length: 100\r\n\r\n{"text": "asth'
        )
        received, _ = closed_within(sock, TIMEOUT + 2)
    assert received.startswith(b"HTTP/1.1 408 ")
    assert b"the request body did not arrive within 1 seconds" in received


def test_a_trickled_body_is_cut_off_too(strict_server: ServerProcess) -> None:
    # The body deadline is a total: a byte every 0.2 s does not keep it open.
    started = time.monotonic()
    with connect(strict_server) as sock:
        sock.sendall(b"POST /similar HTTP/1.1\r\nHost: localhost\r\ncontent-length: 1000\r\n\r\n")
        sock.settimeout(0.2)
        received, sending = b"", True
        while time.monotonic() - started < TIMEOUT + 3:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                try:
                    if sending:
                        sock.sendall(b" ")
                except (BrokenPipeError, ConnectionResetError):
                    sending = False  # the server closed first: its answer is still to read
                continue
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
    assert time.monotonic() - started < TIMEOUT + 2
    assert received.startswith(b"HTTP/1.1 408 ")


def test_each_request_on_a_kept_alive_connection_has_its_own_deadline(
    strict_server: ServerProcess,
) -> None:
    request = b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n"
    with connect(strict_server) as sock:
        for _ in range(3):  # quick requests, together longer than the deadline
            sock.sendall(request)
            assert read_response(sock).startswith(b"HTTP/1.1 200 ")
            time.sleep(TIMEOUT / 2)
        sock.sendall(b"GET /health HTTP/1.1\r\n")
        received, _ = closed_within(sock, TIMEOUT + 2)
    assert received.startswith(b"HTTP/1.1 408 ")


def test_content_length_with_transfer_encoding_is_refused(strict_server: ServerProcess) -> None:
    with connect(strict_server) as sock:
        sock.sendall(
            b"POST /similar HTTP/1.1\r\nHost: localhost\r\ncontent-type: application/json\r\n"
            b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
            b'11\r\n{"text": "asthma"}\r\n0\r\n\r\n'
        )
        received, _ = closed_within(sock, 5)
    assert received.startswith(b"HTTP/1.1 400 ")
    assert b"Content-Length or Transfer-Encoding, not both" in received


def test_connections_beyond_the_limit_get_503(strict_server: ServerProcess) -> None:
    request = b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n"
    idle = [connect(strict_server) for _ in range(MAX_CONNECTIONS - 1)]
    try:
        with connect(strict_server) as sock:  # the last one within the limit
            sock.sendall(request)
            assert read_response(sock).startswith(b"HTTP/1.1 200 ")
            idle.append(connect(strict_server))
            with connect(strict_server) as over:  # one more than the limit
                over.sendall(request)
                received, _ = closed_within(over, 5)
            assert received.startswith(b"HTTP/1.1 503 ")
    finally:
        for sock in idle:
            sock.close()
    # The idle connections are cut at their deadline, and the server serves again.
    time.sleep(0.2)
    with httpx.Client(base_url=strict_server.url, timeout=10) as http:
        assert http.get("/health").status_code == 200
