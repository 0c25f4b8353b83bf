"""The edge over real HTTP on loopback: header case, chunked bodies, and what the web process imports."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest
from werkzeug.serving import make_server

from core.config import Settings
from tests.deliveries import comment_delivery
from webhooks.app import create_app

SECRET = "test-secret"


@pytest.fixture
def server(settings_env, redis_conn) -> Iterator[tuple[str, int]]:
    app = create_app(Settings.from_env(dict(settings_env, SSD_MAX_BODY_BYTES="16384")))
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield "127.0.0.1", httpd.server_port
    httpd.shutdown()
    thread.join(5)


def post(address: tuple[str, int], body: bytes, headers: dict[str, str], chunked: bool = False):
    conn = http.client.HTTPConnection(*address, timeout=10)
    if chunked:
        conn.putrequest("POST", "/webhooks/gitea")
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        for start in range(0, len(body), 4096):
            piece = body[start : start + 4096]
            conn.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        conn.send(b"0\r\n\r\n")
    else:
        conn.request("POST", "/webhooks/gitea", body=body, headers=headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, json.loads(data) if data.startswith(b"{") else data


def test_header_names_are_case_insensitive(server):
    for n, transform in enumerate((str.lower, str.upper)):
        body, hdrs = comment_delivery(SECRET, comment_id=700 + n)
        status, answer = post(server, body, {transform(k): v for k, v in hdrs.items()})
        assert (status, answer["status"]) == (202, "queued")


def test_form_delivery_over_http(server):
    body, hdrs = comment_delivery(SECRET, content_type="form", comment_id=710, body="/ssd help\n\n> quoted & more")
    status, answer = post(server, body, hdrs)
    assert (status, answer["status"]) == (202, "queued")


def test_chunked_bodies_are_capped_too(server):
    body, hdrs = comment_delivery(SECRET, comment_id=720, body="x" * 20000)
    status, _ = post(server, body, hdrs, chunked=True)
    assert status == 413
    small, small_headers = comment_delivery(SECRET, comment_id=721)
    status, answer = post(server, small, small_headers, chunked=True)
    assert (status, answer["status"]) == (202, "queued")


def test_web_process_does_not_import_the_ml_stack(settings_env):
    code = (
        "import sys, json\n"
        "from core.config import Settings\n"
        "from webhooks.app import create_app\n"
        f"app = create_app(Settings.from_env({settings_env!r}))\n"
        "client = app.test_client()\n"
        "assert client.get('/readyz').status_code == 200\n"
        "heavy = {'torch', 'transformers', 'trl', 'llama_cpp', 'datasets', 'peft', 'bot'}\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & heavy)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
