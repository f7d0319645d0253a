"""gunicorn's settings for the web process (read from ./gunicorn.conf.py; see the Procfile).

gunicorn's own environment variables still apply: ``PORT`` binds ``0.0.0.0:$PORT``
(without it, 127.0.0.1:8000), ``GUNICORN_CMD_ARGS`` adds any flag. Beyond those:
``WEB_CONCURRENCY`` worker processes (default two per core, plus one) and
``GUNICORN_THREADS`` threads in each (default 1). With ``LOG_FORMAT=json`` gunicorn's own
lines (start-up, errors, the access log) are JSON like the application's.
"""

import multiprocessing
import os
from pathlib import Path

import environ

# The same .env the Django settings read (variables already set win).
environ.Env.read_env(Path(__file__).resolve().parent / ".env", overwrite=False)

workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
# gunicorn's runtime control socket (one path per user): not needed, and one less way in.
control_socket_disable = True
accesslog = "-"
# The access log never holds a query-string secret (audit_project/accesslog.py).
logger_class = "audit_project.accesslog.RedactingLogger"
# %(M)s: milliseconds; the request id is the one the app answered with (X-Request-ID).
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms request_id=%({x-request-id}o)s "%(a)s"'

if os.environ.get("LOG_FORMAT") == "json":
    logconfig_dict = {
        "root": {"level": "INFO", "handlers": ["console"]},
        "loggers": {
            name: {"level": "INFO", "handlers": [handler], "propagate": False, "qualname": name}
            for name, handler in (
                ("gunicorn.error", "error_console"),
                ("gunicorn.access", "console"),
            )
        },
        "formatters": {"generic": {"()": "audit_project.logformat.JsonFormatter"}},
    }
