"""gunicorn settings for the web tier: ``gunicorn -c deploy/gunicorn.conf.py 'webhooks.app:create_app()'``.

Values come from the same ``SSD_*`` settings as everything else (``core.config``), so ``ssd web``,
the Procfile and the systemd unit all agree. The app is created in each worker after the fork
(no preload): database engines and Redis pools must not be shared across processes.
"""

from core.config import Settings

_settings = Settings.from_env()

bind = _settings.bind
workers = _settings.web_workers
# Threads let a worker overlap the few milliseconds a delivery waits on the database and Redis,
# and keep Gitea's HTTP/1.1 connections alive between deliveries.
worker_class = "gthread"
threads = 4
keepalive = 5
# Gitea gives a delivery 5 s; a request running far past that is stuck, not slow.
timeout = 30
graceful_timeout = 20
preload_app = False
# Behind nginx on the same host (deploy/nginx.conf): trust its X-Forwarded-* headers only.
forwarded_allow_ips = "127.0.0.1,::1"
# Access lines cost time on every request; the app logs one line per accepted delivery instead.
accesslog = None
errorlog = "-"
loglevel = _settings.log_level.lower()
proc_name = "ssd-web"
# gunicorn's runtime control socket defaults to one path per user (~/.gunicorn/gunicorn.ctl), which
# several instances on a host (web, the benchmark, tests) would fight over; nothing here uses it.
control_socket_disable = True
