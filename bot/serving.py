"""The serving target the settings name, and a rollback that moves serving and the registry together."""

from __future__ import annotations

from typing import Any

from core.config import Settings


def serving_url(settings: Settings) -> str:
    """The OpenAI base URL of the configured serving target ('' for none)."""
    if settings.serving == "local":
        return f"http://127.0.0.1:{settings.local_model_port}/v1"
    if settings.serving in ("ollama", "vllm"):
        return f"{settings.ollama_url if settings.serving == 'ollama' else settings.vllm_url}/v1"
    return ""


def serving_target(settings: Settings) -> Any:
    """The serving target ``SSD_SERVING`` names, its state under ``<data dir>/serving``."""
    from pipeline.serving import open_target

    urls = {"local": serving_url(settings), "ollama": settings.ollama_url, "vllm": settings.vllm_url}
    return open_target(settings.serving, settings.data_dir / "serving", urls.get(settings.serving))


def rollback_everywhere(settings: Settings, version: str | None = None, conn: Any = None) -> dict[str, Any]:
    """Serve the previously promoted adapter (or ``version``) again, verified, then move the registry back;
    under the loop's run lock, so a run cannot promote over it halfway."""
    from core.loop_lock import RunLock
    from core.redis_conn import connect
    from pipeline.loop.run import new_run_id, rollback
    from pipeline.training.adapters import AdapterRegistry
    from pipeline.training.presets import preset_for

    conn = conn if conn is not None else connect(settings)
    with RunLock(conn, f"rollback-{new_run_id()}"):
        return rollback(
            AdapterRegistry(settings.data_dir / "adapters"),
            serving_target(settings),
            settings.default_model,
            preset_for(settings.default_model).t_eval,
            version,
        )  # the run's T_eval
