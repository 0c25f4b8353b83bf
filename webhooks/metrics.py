"""Prometheus text for ``GET /metrics``, with the counters kept in Redis.

gunicorn runs several worker processes, so in-process counters would each see a slice. Counters live
in Redis hashes (``HINCRBY``) that every web worker and RQ worker writes to; gauges (queue depth, job
counts) are read from RQ's own lists and registries at scrape time. A failed counter write is logged
and dropped: a delivery must never fail because of a metric.
"""

from __future__ import annotations

import logging
import re

import redis
from redis.client import Pipeline
from rq import Queue, Worker

from core.queues import ALL

log = logging.getLogger(__name__)

DELIVERIES_KEY = "ssd:metrics:deliveries"  # field "event|outcome" -> count
JOB_DURATION_KEY = "ssd:metrics:job_duration"  # fields "queue|status|le=..."/"|sum"/"|count"

# Seconds; conversation jobs take a second, evaluations minutes, training hours.
DURATION_BUCKETS = (0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 1800.0, 3600.0, 7200.0, 21600.0)

# Label values we emit for events; anything else is "other", so unauthenticated callers cannot
# grow the label set.
KNOWN_EVENTS = frozenset(
    {
        "issue_comment",
        "pull_request_comment",
        "pull_request",
        "pull_request_sync",
        "pull_request_label",
        "pull_request_assign",
        "pull_request_milestone",
        "pull_request_review_request",
        "pull_request_review_comment",
        "pull_request_review_approved",
        "pull_request_review_rejected",
        "issues",
        "issue_assign",
        "issue_label",
        "issue_milestone",
        "push",
        "create",
        "delete",
        "fork",
        "release",
        "repository",
        "wiki",
        "package",
        "status",
        "workflow_job",
        "workflow_run",
        "unverified",
    }
)

REGISTRIES = {
    "started": "started_job_registry",
    "finished": "finished_job_registry",
    "failed": "failed_job_registry",
    "deferred": "deferred_job_registry",
    "scheduled": "scheduled_job_registry",
    "canceled": "canceled_job_registry",
}

_LABEL_SAFE = re.compile(r"[^A-Za-z0-9_.:-]")


def event_label(event_type: str | None) -> str:
    return event_type if event_type in KNOWN_EVENTS else "other"


def count_delivery(conn: redis.Redis | Pipeline, event: str, outcome: str) -> None:
    """Count one delivery; on a pipeline the increment just joins it (and its fate)."""
    try:
        conn.hincrby(DELIVERIES_KEY, f"{event_label(event)}|{outcome}", 1)
    except redis.RedisError as exc:
        log.warning("metrics: could not count delivery (%s)", exc)


def record_job(conn: redis.Redis, queue_name: str, status: str, seconds: float) -> None:
    """Add one finished/failed job run to the duration histogram (called by ``ssd worker``)."""
    prefix = f"{queue_name}|{status}"
    try:
        pipe = conn.pipeline(transaction=False)
        for bound in DURATION_BUCKETS:
            if seconds <= bound:
                pipe.hincrby(JOB_DURATION_KEY, f"{prefix}|le={bound}", 1)
        pipe.hincrby(JOB_DURATION_KEY, f"{prefix}|le=+Inf", 1)
        pipe.hincrbyfloat(JOB_DURATION_KEY, f"{prefix}|sum", seconds)
        pipe.hincrby(JOB_DURATION_KEY, f"{prefix}|count", 1)
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("metrics: could not record job duration (%s)", exc)


def _label(value: str) -> str:
    return _LABEL_SAFE.sub("_", value)


def _hash(conn: redis.Redis, key: str) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in conn.hgetall(key).items()}


def render(conn: redis.Redis) -> str:
    """The whole exposition; raises ``redis.RedisError`` when Redis is down (the route answers 503)."""
    lines = [
        "# HELP ssd_deliveries_total Webhook deliveries received, by event type and outcome.",
        "# TYPE ssd_deliveries_total counter",
    ]
    for field, value in sorted(_hash(conn, DELIVERIES_KEY).items()):
        event, _, outcome = field.partition("|")
        lines.append(f'ssd_deliveries_total{{event="{_label(event)}",outcome="{_label(outcome)}"}} {value}')

    lines += ["# HELP ssd_queue_depth Jobs waiting in each RQ queue.", "# TYPE ssd_queue_depth gauge"]
    queues = [Queue(name, connection=conn) for name in ALL]
    for q in queues:
        lines.append(f'ssd_queue_depth{{queue="{q.name}"}} {q.count}')

    lines += ["# HELP ssd_jobs Jobs in each RQ registry, by queue and status.", "# TYPE ssd_jobs gauge"]
    for q in queues:
        for status, attribute in REGISTRIES.items():
            lines.append(f'ssd_jobs{{queue="{q.name}",status="{status}"}} {getattr(q, attribute).count}')

    lines += ["# HELP ssd_workers RQ workers listening on each queue.", "# TYPE ssd_workers gauge"]
    for q in queues:
        lines.append(f'ssd_workers{{queue="{q.name}"}} {Worker.count(queue=q)}')

    lines += [
        "# HELP ssd_job_duration_seconds Time RQ workers spent running jobs, by queue and final status.",
        "# TYPE ssd_job_duration_seconds histogram",
    ]
    durations = _hash(conn, JOB_DURATION_KEY)
    series = sorted({field.rsplit("|", 1)[0] for field in durations})
    for prefix in series:
        queue_name, _, status = prefix.partition("|")
        labels = f'queue="{_label(queue_name)}",status="{_label(status)}"'
        for bound in (*(str(b) for b in DURATION_BUCKETS), "+Inf"):
            count = durations.get(f"{prefix}|le={bound}", "0")
            lines.append(f'ssd_job_duration_seconds_bucket{{{labels},le="{bound}"}} {count}')
        lines.append(f"ssd_job_duration_seconds_sum{{{labels}}} {durations.get(f'{prefix}|sum', '0')}")
        lines.append(f"ssd_job_duration_seconds_count{{{labels}}} {durations.get(f'{prefix}|count', '0')}")
    return "\n".join(lines) + "\n"
