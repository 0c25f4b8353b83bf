"""A scripted OpenAI-compatible server on loopback, for the HTTP backend's tests."""

from __future__ import annotations

import json
import threading

from tests.harness import free_port

CODE_PROMPT = [{"role": "user", "content": "Write a Python function add(a, b) that returns a + b."}]


class ScriptedServer:
    """A real HTTP server on loopback that answers chat completions from a script of statuses, to test
    what a real server cannot be made to do on demand (fail with 503/429, reject with 400)."""

    def __init__(self, statuses: list[int]) -> None:
        from werkzeug.serving import make_server
        from werkzeug.wrappers import Request, Response

        self.statuses = list(statuses)
        self.requests: list[dict] = []

        @Request.application
        def app(request: Request) -> Response:
            if request.path == "/v1/models":
                return Response(json.dumps({"data": [{"id": "scripted"}]}), content_type="application/json")
            body = request.get_json()
            self.requests.append(body)
            status = self.statuses.pop(0) if self.statuses else 200
            if status != 200:
                headers = {"Retry-After": "0"} if status == 429 else {}
                return Response("overloaded" if status >= 429 else "bad request", status=status, headers=headers)
            answer = {
                "choices": [{"message": {"role": "assistant", "content": f"seed={body['seed']} STOPPED"}}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 3},
            }
            return Response(json.dumps(answer), content_type="application/json")

        self.server = make_server("127.0.0.1", free_port(), app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
