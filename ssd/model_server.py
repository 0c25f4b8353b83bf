"""``ssd model-server``: the local OpenAI-compatible server for the embedded default (``SSD_SERVING=local``).

- ``GET /v1/models`` lists one model whose id names what is served: the promoted adapter's version,
  or ``base``. ``POST /v1/chat/completions`` answers with it (non-streaming), whatever model name the
  request gives (like llama.cpp's server), and says which one answered in the body's ``model`` and the
  ``X-SSD-Model`` header. A request without ``temperature`` gets the deployment's audited T_eval.
- Generation goes through ``pipeline.backends.open_backend``: llama.cpp for a GGUF base (with the
  adapter's GGUF LoRA when there is one), transformers + PEFT for an adapter directory.
- Hot swap: it watches ``SSD_DATA_DIR/serving/local-model.json`` (written by
  ``pipeline.serving.local.LocalTarget``), loads the new model beside the old one, swaps between two
  requests and reports the outcome on ``GET /health``; a model that fails to load leaves the old one
  served. It listens on 127.0.0.1 only (``SSD_LOCAL_MODEL_PORT``).
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from core.config import Settings
from pipeline.backends import Backend, BackendError, UnsupportedParam, open_backend, resolve_model
from pipeline.serving.base import Deployment, ServingError
from pipeline.serving.gguf_check import check_lora_fits
from pipeline.serving.local import WANTED_FILE, read_wanted
from pipeline.types import SamplingParams

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
DEFAULT_TEMPERATURE = 1.0  # the base before any promotion: OpenAI's own default
MAX_BODY = 1024 * 1024
MAX_TOKENS = 4096
MAX_N = 16
ROLES = ("system", "user", "assistant")


class BadRequest(ValueError):
    """The request is malformed; the message says which field."""


def open_deployment(deployment: Deployment) -> Backend:
    """The backend for a deployment: the GGUF LoRA on a GGUF base, else the PEFT directory."""
    if deployment.base_model.startswith("openai:"):
        raise BackendError("the local model server serves local models, not another server")
    if deployment.adapter_id is None:
        return open_backend(deployment.base_model)
    base = resolve_model(deployment.base_model)
    if deployment.gguf_path and base.suffix == ".gguf":
        try:
            check_lora_fits(base, deployment.gguf_path)
        except ValueError as exc:  # GGUFFormatError included
            raise BackendError(str(exc)) from exc
        return open_backend(deployment.base_model, adapter=deployment.gguf_path)
    if deployment.adapter_dir:
        return open_backend(deployment.base_model, adapter=deployment.adapter_dir)
    raise BackendError(f"adapter {deployment.adapter_id}: a GGUF LoRA needs a GGUF base; there is no PEFT directory")


def _number(body: dict[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = body.get(key, default)
    if value is None:
        value = default
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise BadRequest(f"{key} must be a number in [{low}, {high}]")
    return float(value)


def _integer(body: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = body.get(key, default)
    if value is None:
        value = default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRequest(f"{key} must be an integer in [{low}, {high}]")
    return value


def parse_chat_request(body: Any, temperature: float) -> tuple[list[dict[str, str]], SamplingParams]:
    """Messages and sampling parameters from an OpenAI chat request, checked field by field."""
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    if body.get("stream"):
        raise BadRequest("stream is not supported by this server; send stream=false")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty list")
    for message in messages:
        if (
            not isinstance(message, dict)
            or message.get("role") not in ROLES
            or not isinstance(message.get("content"), str)
        ):
            raise BadRequest(f"each message needs a role in {ROLES} and string content")
    stop = body.get("stop") or ()
    if isinstance(stop, str):
        stop = (stop,)
    if not isinstance(stop, list | tuple) or len(stop) > 4 or not all(isinstance(s, str) for s in stop):
        raise BadRequest("stop must be a string or a list of at most 4 strings")
    params = SamplingParams(
        temperature=_number(body, "temperature", temperature, 0.0, 5.0),
        top_p=_number(body, "top_p", 1.0, 0.0, 1.0),
        top_k=_integer(body, "top_k", 0, 0, 100_000),
        min_p=_number(body, "min_p", 0.0, 0.0, 1.0),
        max_tokens=_integer(body, "max_tokens", 512, 1, MAX_TOKENS),
        seed=_integer(body, "seed", 0, 0, 2**31 - 1),
        stop=tuple(stop),
        n=_integer(body, "n", 1, 1, MAX_N),
    )
    return [{"role": m["role"], "content": m["content"]} for m in messages], params


class ModelServer:
    """The served model and its swaps. ``generate_lock`` keeps one generation at a time (the
    in-process backends are not thread-safe) and is what a swap waits for."""

    def __init__(
        self, state_dir: str | Path, default: Deployment, opener: Any = open_deployment, poll: float = 0.5
    ) -> None:
        self.state_dir = Path(state_dir)
        self.opener = opener
        self.poll = poll
        self.generate_lock = threading.Lock()
        self.deployment = default
        self.generation: str | None = None
        self.failed_generation: str | None = None
        self.error: str | None = None
        self.loading: str | None = None
        self.seen: tuple[int, int] | None = None
        wanted = self._wanted()
        self.backend: Backend | None = None
        if wanted is not None:
            try:
                deployment = Deployment.from_dict(wanted["deployment"])
                log.info("loading %s on %s", deployment.version, deployment.base_model)
                self.backend = opener(deployment)
                self.deployment, self.generation = deployment, wanted["generation"]
            except Exception as exc:
                # Serve the base rather than exit: under `ssd serve` one child exiting stops them all,
                # and /v1/models and /health show that the base is served and why.
                log.error("could not load the deployment in %s: %s; serving %s", WANTED_FILE, exc, default.version)
                self.failed_generation, self.error = wanted.get("generation"), f"{type(exc).__name__}: {exc}"
        if self.backend is None:
            log.info("loading %s on %s", default.version, default.base_model)
            self.backend = opener(default)

    # ----------------------------------------------------------------- swaps
    def _wanted(self) -> dict[str, Any] | None:
        path = self.state_dir / WANTED_FILE
        try:
            stat = path.stat()
        except FileNotFoundError:
            return None
        self.seen = (stat.st_mtime_ns, stat.st_size)
        return read_wanted(self.state_dir)

    def check_for_swap(self) -> None:
        """Load and swap in what the wanted file asks for, if it changed since the last look."""
        path = self.state_dir / WANTED_FILE
        try:
            stat = path.stat()
        except FileNotFoundError:
            return
        if (stat.st_mtime_ns, stat.st_size) == self.seen:
            return
        try:
            wanted = self._wanted()
        except (ServingError, KeyError, TypeError, ValueError) as exc:
            log.error("ignoring %s: %s", path, exc)
            return
        if wanted is None or wanted["generation"] in (self.generation, self.failed_generation):
            return
        new = Deployment.from_dict(wanted["deployment"])
        if new == self.deployment:  # the same model asked for again (a restore): nothing to load
            self.generation = wanted["generation"]
            return
        self.loading = new.version
        try:
            backend = self.opener(new)
        except Exception as exc:  # any load failure keeps the old model served and is reported
            log.error("could not load %s: %s", new.version, exc)
            self.failed_generation, self.error = wanted["generation"], f"{type(exc).__name__}: {exc}"
            return
        finally:
            self.loading = None
        with self.generate_lock:
            old, self.backend = self.backend, backend
            self.deployment, self.generation, self.error = new, wanted["generation"], None
        old.close()
        log.info("now serving %s", new.version)

    def watch(self, stop: threading.Event) -> None:
        while not stop.wait(self.poll):
            try:
                self.check_for_swap()
            except Exception:  # the watcher must survive anything; the next change is tried again
                log.exception("swap check failed")

    # ----------------------------------------------------------------- HTTP
    def health(self) -> dict[str, Any]:
        return {
            "model": self.deployment.version,
            "generation": self.generation,
            "loading": self.loading,
            "failed_generation": self.failed_generation,
            "error": self.error,
            "deployment": asdict(self.deployment),
        }

    def models(self) -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {
                    "id": self.deployment.version,
                    "object": "model",
                    "created": 0,
                    "owned_by": "ssd-bot",
                    "base_model": self.deployment.base_model,
                    "temperature": self.deployment.temperature,
                }
            ],
        }

    def chat(self, body: Any) -> tuple[dict[str, Any], str]:
        with self.generate_lock:
            deployment, backend = self.deployment, self.backend
            messages, params = parse_chat_request(body, deployment.temperature)
            before = (backend.usage.prompt_tokens, backend.usage.completion_tokens)
            texts = backend.generate([messages], params)[0]
            usage = (backend.usage.prompt_tokens - before[0], backend.usage.completion_tokens - before[1])
        answer = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": deployment.version,
            "choices": [
                {"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                for i, text in enumerate(texts)
            ],
            "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)},
        }
        return answer, deployment.version

    def wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        request.max_content_length = MAX_BODY
        try:
            response = self._route(request)
        except HTTPException as exc:
            response = _error(exc.code or 400, exc.description or exc.name)
        return response(environ, start_response)

    def _route(self, request: Request) -> Response:
        if request.path == "/health" and request.method == "GET":
            return _json(self.health())
        if request.path == "/v1/models" and request.method == "GET":
            return _json(self.models())
        if request.path == "/v1/chat/completions" and request.method == "POST":
            try:
                answer, model = self.chat(json.loads(request.get_data() or b"null"))
            except (BadRequest, UnsupportedParam, ValueError) as exc:  # ValueError: the JSON itself
                return _error(400, str(exc))
            except BackendError as exc:
                return _error(500, str(exc))
            response = _json(answer)
            response.headers["X-SSD-Model"] = model
            return response
        return _error(404, f"no route {request.method} {request.path}")


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data), status=status, mimetype="application/json")


def _error(status: int, message: str) -> Response:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return _json({"error": {"message": message, "type": kind, "code": status}}, status=status)


# --------------------------------------------------------------------------- process


def serve_forever(server: ModelServer, port: int, stop: threading.Event | None = None) -> None:
    stop = stop or threading.Event()
    http = make_server(HOST, port, server.wsgi, threaded=True)
    watcher = threading.Thread(target=server.watch, args=(stop,), name="model-swap-watcher", daemon=True)
    watcher.start()
    log.info("model server on http://%s:%d/v1 serving %s", HOST, port, server.deployment.version)
    closer = threading.Thread(target=lambda: (stop.wait(), http.shutdown()), daemon=True)
    closer.start()
    try:
        http.serve_forever()
    finally:
        stop.set()


def run_model_server(settings: Settings, port: int | None = None) -> int:
    state_dir = settings.data_dir / "serving"
    state_dir.mkdir(parents=True, exist_ok=True)
    default = Deployment(
        adapter_id=None,
        adapter_dir=None,
        gguf_path=None,
        base_model=settings.default_model,
        temperature=DEFAULT_TEMPERATURE,
    )
    server = ModelServer(state_dir, default)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):  # stop between requests, then free the model
        signal.signal(signum, lambda *_: stop.set())
    try:
        serve_forever(server, port or settings.local_model_port, stop)
    finally:
        server.backend.close()
    return 0
