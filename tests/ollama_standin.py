"""An Ollama stand-in over real HTTP, following docs/api.md (2026-08): blobs, create, show, tags, copy,
delete, and the OpenAI-compatible chat endpoint. It records every request, verifies blob digests
(400 on a mismatch, as Ollama does), refuses adapters whose blobs it does not have, applies Ollama's
adapter rules (one GGUF file, or safetensors + adapter_config.json on a llama/gemma2 base), and
answers chat only for models it has. ``broken_adapters`` holds digests whose models answer with empty
text, to exercise a deploy that must be rolled back.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$")


def _full(name: str) -> str:
    return name if ":" in name else f"{name}:latest"


@dataclass
class OllamaModel:
    base_arch: str
    adapters: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        manifest = json.dumps(
            {"arch": self.base_arch, "adapters": self.adapters, "parameters": self.parameters}, sort_keys=True
        )
        return hashlib.sha256(manifest.encode()).hexdigest()


class OllamaStandin:
    def __init__(self, base_models: dict[str, str] | None = None) -> None:
        # name -> architecture of the pulled base models
        self.models: dict[str, OllamaModel] = {
            _full(name): OllamaModel(base_arch=arch)
            for name, arch in (base_models or {"smollm2:135m": "llama"}).items()
        }
        self.blobs: dict[str, bytes] = {}
        self.requests: list[tuple[str, str, Any]] = []
        self.broken_adapters: set[str] = set()
        self.lock = threading.Lock()
        self.server = make_server("127.0.0.1", 0, self.wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def paths(self) -> list[str]:
        return [f"{method} {path}" for method, path, _ in self.requests]

    # ----------------------------------------------------------------- HTTP
    def wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        data = request.get_data()
        body: Any = None
        if request.path.startswith(("/api/create", "/api/show", "/api/copy", "/api/delete", "/v1/")) and data:
            try:
                body = json.loads(data)
            except ValueError:
                return _error(400, "invalid JSON")(environ, start_response)
        with self.lock:
            self.requests.append((request.method, request.path, body))
            response = self.route(request, data, body)
        return response(environ, start_response)

    def route(self, request: Request, data: bytes, body: Any) -> Response:
        method, path = request.method, request.path
        if path.startswith("/api/blobs/"):
            digest = path.removeprefix("/api/blobs/")
            if method == "HEAD":
                return Response(status=200 if digest in self.blobs else 404)
            if method == "POST":
                if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
                    return _error(400, "invalid digest format")
                if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
                    return _error(400, "digest mismatch, expected " + digest)
                self.blobs[digest] = data
                return Response(status=201)
        if (method, path) == ("POST", "/api/create"):
            return self.create(body or {})
        if (method, path) == ("POST", "/api/show"):
            model = self.models.get(_full(str((body or {}).get("model", ""))))
            if model is None:
                return _error(404, f"model '{(body or {}).get('model')}' not found")
            parameters = "\n".join(f"{key:<30} {value}" for key, value in model.parameters.items())
            return _json({"parameters": parameters, "details": {"family": model.base_arch}, "modelfile": "# stand-in"})
        if (method, path) == ("GET", "/api/tags"):
            return _json(
                {
                    "models": [
                        {"name": name, "model": name, "digest": model.digest}
                        for name, model in sorted(self.models.items())
                    ]
                }
            )
        if (method, path) == ("POST", "/api/copy"):
            source, destination = _full(str(body.get("source", ""))), _full(str(body.get("destination", "")))
            if source not in self.models:
                return _error(404, f"model '{source}' not found")
            self.models[destination] = self.models[source]
            return Response(status=200)
        if (method, path) == ("DELETE", "/api/delete"):
            name = _full(str((body or {}).get("model", "")))
            if self.models.pop(name, None) is None:
                return _error(404, f"model '{name}' not found")
            return Response(status=200)
        if (method, path) == ("POST", "/v1/chat/completions"):
            return self.chat(body or {})
        return _error(404, "404 page not found")

    def create(self, body: dict[str, Any]) -> Response:
        name = str(body.get("model", ""))
        if not NAME.match(name):
            return _error(400, "invalid model name")
        base = self.models.get(_full(str(body.get("from", ""))))
        if base is None:
            return _error(400, f"pull model manifest: model '{body.get('from')}' not found")
        adapters = body.get("adapters") or {}
        for file_name, digest in adapters.items():
            if digest not in self.blobs:
                return _error(400, f"blob {digest} for {file_name} not found")
        names = sorted(adapters)
        if any(n.endswith(".gguf") for n in names):
            if len(names) != 1:
                return _error(400, "only one adapter is currently supported")
        elif names:
            if "adapter_config.json" not in names or not any(n.endswith(".safetensors") for n in names):
                return _error(400, "safetensors adapter needs adapter_config.json and a .safetensors file")
            if base.base_arch not in ("llama", "gemma2"):
                return _error(400, "unsupported architecture")
        parameters = {**base.parameters, **(body.get("parameters") or {})}
        self.models[_full(name)] = OllamaModel(
            base_arch=base.base_arch, adapters={**base.adapters, **adapters}, parameters=parameters
        )
        return _json({"status": "success"})

    def chat(self, body: dict[str, Any]) -> Response:
        name = str(body.get("model", ""))
        model = self.models.get(_full(name))
        if model is None:
            return _json(
                {"error": {"message": f'model "{name}" not found, try pulling it first', "type": "api_error"}}, 404
            )
        broken = any(digest in self.broken_adapters for digest in model.adapters.values())
        text = "" if broken else f"def add(a, b):\n    return a + b  # {name}"
        return _json(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "model": name,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            }
        )


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data), status=status, mimetype="application/json")


def _error(status: int, message: str) -> Response:
    return _json({"error": message}, status)
