"""Stalled clients must not hold the request threads of the service."""

from __future__ import annotations

import socket
import time

import requests

from tests.conftest import publish_sample_mappings

# Fewer request threads than stalled clients, so that without a read timeout
# no thread would ever be free again.
THREADS = 4


def open_stalled_connections(port: int, count: int) -> list[socket.socket]:
    """Open connections that send half a request and then nothing."""
    stalled = []
    for number in range(count):
        connection = socket.create_connection(("127.0.0.1", port), timeout=5)
        if number % 2:
            connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        else:
            connection.sendall(
                b"POST /run_info HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{}"
            )
        stalled.append(connection)
    return stalled


def test_stalled_clients_are_dropped(service_env, start_service):
    publish_sample_mappings(service_env["ARGUS_STORE"])
    service = start_service(
        service_env, gunicorn_workers=1, extra_args=("--threads", str(THREADS))
    )
    stalled = open_stalled_connections(service.port, THREADS + 2)
    try:
        # Every request thread is now blocked on a stalled client; the read
        # timeout must free them.
        deadline = time.monotonic() + 40
        answer = None
        while time.monotonic() < deadline:
            try:
                answer = requests.get(service.url + "/healthz", timeout=2)
                break
            except requests.RequestException:
                continue
    finally:
        for connection in stalled:
            connection.close()

    assert answer is not None
    assert answer.status_code == 200
    assert "Traceback" not in service.read_log()
