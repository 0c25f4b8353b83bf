"""RQ queue names. CPU and GPU work can be served by workers on different hosts."""

from __future__ import annotations

import redis
from rq import Queue

DEFAULT = "default"  # the Gitea conversation: parse, authorize, reply, ingest
CPU = "cpu"  # evaluation, audits: CPU-heavy, any worker host
GPU = "gpu"  # SSD training and GPU sampling: workers on GPU hosts only
ALL = (DEFAULT, CPU, GPU)


def queue(name: str, connection: redis.Redis) -> Queue:
    if name not in ALL:
        raise ValueError(f"unknown queue {name!r}; expected one of {', '.join(ALL)}")
    return Queue(name, connection=connection)
