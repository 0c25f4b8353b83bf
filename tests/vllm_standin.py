"""A vLLM stand-in over real HTTP, following docs/features/lora.md: ``/v1/models``, runtime LoRA
loading (``/v1/load_lora_adapter``, ``/v1/unload_lora_adapter``; absent, i.e. 404, unless runtime
updating is enabled, as with ``VLLM_ALLOW_RUNTIME_LORA_UPDATING``) and chat completions that refuse a
model that is not loaded. A LoRA path must be a directory with ``adapter_config.json`` whose rank fits
``max_lora_rank``. It records every request; ``broken_paths`` answer with empty text.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response


class VllmStandin:
    def __init__(
        self, base_model: str = "smollm2", runtime_lora_updating: bool = True, max_lora_rank: int = 16
    ) -> None:
        self.base_model = base_model
        self.runtime_lora_updating = runtime_lora_updating
        self.max_lora_rank = max_lora_rank
        self.loras: dict[str, str] = {}
        self.broken_paths: set[str] = set()
        self.requests: list[tuple[str, str, Any]] = []
        self.lock = threading.Lock()
        self.server = make_server("127.0.0.1", 0, self.wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        try:
            body = json.loads(request.get_data() or b"null")
        except ValueError:
            return _error(400, "invalid JSON", "BadRequestError")(environ, start_response)
        with self.lock:
            self.requests.append((request.method, request.path, body))
            response = self.route(request.method, request.path, body or {})
        return response(environ, start_response)

    def route(self, method: str, path: str, body: dict[str, Any]) -> Response:
        if (method, path) == ("GET", "/v1/models"):
            data = [
                {"id": self.base_model, "object": "model", "owned_by": "vllm", "root": self.base_model, "parent": None}
            ]
            data += [
                {"id": name, "object": "model", "owned_by": "vllm", "root": lora_path, "parent": self.base_model}
                for name, lora_path in self.loras.items()
            ]
            return _json({"object": "list", "data": data})
        if path in ("/v1/load_lora_adapter", "/v1/unload_lora_adapter") and method == "POST":
            if not self.runtime_lora_updating:
                return _json({"detail": "Not Found"}, 404)
            return self.load(body) if path.endswith("/load_lora_adapter") else self.unload(body)
        if (method, path) == ("POST", "/v1/chat/completions"):
            model = str(body.get("model", ""))
            if model != self.base_model and model not in self.loras:
                return _error(404, f"The model `{model}` does not exist.", "NotFoundError")
            text = "" if self.loras.get(model) in self.broken_paths else f"def add(a, b):\n    return a + b  # {model}"
            return _json(
                {
                    "id": "chatcmpl-1",
                    "object": "chat.completion",
                    "model": model,
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                    ],
                }
            )
        return _json({"detail": "Not Found"}, 404)

    def load(self, body: dict[str, Any]) -> Response:
        name, lora_path = body.get("lora_name"), body.get("lora_path")
        if not name or not lora_path:
            return _error(400, "Both 'lora_name' and 'lora_path' must be provided.", "InvalidUserInput")
        if name in self.loras:
            return _error(400, f"The lora adapter '{name}' has already been loaded.", "InvalidUserInput")
        config = Path(lora_path) / "adapter_config.json"
        try:
            rank = int(json.loads(config.read_text()).get("r", 0))
        except (OSError, ValueError):
            return _error(400, f"Loading lora {name} failed: No adapter found for {lora_path}", "BadRequestError")
        if rank > self.max_lora_rank:
            return _error(
                400, f"LoRA rank {rank} is greater than max_lora_rank {self.max_lora_rank}.", "BadRequestError"
            )
        self.loras[name] = lora_path
        return Response(f"Success: LoRA adapter '{name}' added successfully.", mimetype="text/plain")

    def unload(self, body: dict[str, Any]) -> Response:
        name = body.get("lora_name")
        if name not in self.loras:
            return _error(404, f"The lora adapter '{name}' cannot be found.", "NotFoundError")
        del self.loras[name]
        return Response(f"Success: LoRA adapter '{name}' removed successfully.", mimetype="text/plain")


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data), status=status, mimetype="application/json")


def _error(status: int, message: str, kind: str) -> Response:
    return _json({"object": "error", "message": message, "type": kind, "param": None, "code": status}, status)
