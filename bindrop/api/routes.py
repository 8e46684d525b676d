"""Every endpoint of the control API, in one table, with what the OpenAPI document says of it
(the fields: ``bindrop.api.endpoint.Endpoint``)."""

from __future__ import annotations

from typing import Any

from bindrop.api import (
    actions,
    alerts,
    apps,
    backups,
    bucket,
    care,
    cron,
    env,
    events,
    logs,
    metrics,
    openapi,
    releases,
    runs,
    server,
    system,
    tls,
    tokens,
)
from bindrop.api.endpoint import Endpoint, Param

_STR: dict[str, Any] = {"type": "string"}
_INT: dict[str, Any] = {"type": "integer"}
_BOOL: dict[str, Any] = {"type": "boolean"}
_LIMIT: dict[str, Any] = {"oneOf": [{"type": "integer", "minimum": 1}, {"type": "string"},
                                    {"type": "null"}]}
_FLAG: dict[str, Any] = {"type": "string", "enum": ["0", "1"]}
WAIT: Param = ("wait", _FLAG, "0: answer at once with a job id instead of the outcome")

APP_SETTINGS: dict[str, Any] = {
    "hosts": {"type": "array", "items": _STR},
    "health_path": {"type": ["string", "null"]},
    "health_timeout_s": {"type": "number"},
    "memory_max": _LIMIT,
    "cpu_quota": _LIMIT,
    "tasks_max": _LIMIT,
    "on_demand": _BOOL,
    "idle_timeout_s": {"type": "number"},
    "liveness_interval_s": {"type": ["number", "null"]},
    "no_overlap": _BOOL,
    "maintenance_message": {"type": ["string", "null"]},
    "body_limit": _INT,
    "https_redirect": _BOOL,
    "no_tls": _BOOL,
    "allow_http": _BOOL,
    "hsts": _BOOL,
}
NEW_APP = {"type": "object", "required": ["name", "hosts"], "additionalProperties": False,
           "properties": {"name": _STR} | {k: v for k, v in APP_SETTINGS.items()
                                           if k != "maintenance_message"}}
APP_CHANGES = {"type": "object", "additionalProperties": False, "properties": APP_SETTINGS}
LIMITS = {"type": "object", "additionalProperties": False,
          "properties": {k: _LIMIT for k in ("memory_max", "cpu_quota", "tasks_max")}}
ENV = {"type": "object", "additionalProperties": _STR}
DEPLOY = {"type": "object", "required": ["release"], "additionalProperties": False,
          "properties": {"release": {"type": "integer", "minimum": 1}, "rolling": _BOOL}}
ROLLBACK = {"type": "object", "additionalProperties": False,
            "properties": {"to": {"type": ["integer", "null"], "minimum": 1}}}
SCALE = {"type": "object", "additionalProperties": False,
         "properties": {"counts": {"type": "object", "additionalProperties": _INT},
                        "memory_max": {"type": "object", "additionalProperties": _LIMIT},
                        "health_path": {"type": "object",
                                        "additionalProperties": {"type": ["string", "null"]}}}}
RUN = {"type": "object", "required": ["args"], "additionalProperties": False,
       "properties": {"args": {"type": "array", "items": _STR, "minItems": 1},
                      "detach": _BOOL, "plan": _BOOL}}
DASHBOARD = {"type": "object", "required": ["host"], "additionalProperties": False,
             "properties": {"host": _STR}}
BUCKET_SETTINGS = {"type": "object", "required": ["bucket"], "additionalProperties": False,
                   "properties": {k: _STR for k in ("bucket", "prefix", "endpoint", "region",
                                                   "access_key_id", "secret_access_key")}}
NEW_TOKEN = {"type": "object", "required": ["name"], "additionalProperties": False,
             "properties": {"name": _STR,
                            "scope": {"type": "string", "enum": ["admin", "read-only"]},
                            "expires": {"type": ["string", "null"]}}}
NEW_JOB = {"type": "object", "required": ["schedule", "args"], "additionalProperties": False,
           "properties": {"name": {"type": ["string", "null"]}, "schedule": _STR,
                          "args": {"type": "array", "items": _STR, "minItems": 1}}}
TLS_SETUP = {"type": "object", "required": ["email"], "additionalProperties": False,
             "properties": {"email": _STR, "directory": {"type": ["string", "null"]},
                            "directory_ca": {"type": ["string", "null"]}, "staging": _BOOL}}
TLS_RENEW = {"type": "object", "additionalProperties": False,
             "properties": {"name": {"type": ["string", "null"]}, "force": _BOOL}}
CARE_EVENT = {"type": "object", "required": ["kind"], "additionalProperties": False,
              "properties": {"kind": {"type": "string", "enum": sorted(care.CARE_KINDS)},
                             "app": {"type": ["string", "null"]}, "message": _STR,
                             "data": {"type": ["object", "null"]}}}
_QUEUE: Param = ("queue", _FLAG, "1: wait for a care run in progress instead of a 409")
_CARE_WAIT: Param = ("wait", _FLAG, "1: answer once the run has ended (default: at once)")
NEW_BACKUP = {"type": "object", "additionalProperties": False,
              "properties": {"app": {"type": ["string", "null"]}}}
RESTORE = {"type": "object", "additionalProperties": False,
           "properties": {"from": {"type": ["string", "null"]}}}
GC = {"type": "object", "additionalProperties": False, "properties": {"dry_run": _BOOL}}
DISK_CHECK = {"type": "object", "additionalProperties": False,
              "properties": {"threshold": {"type": ["string", "number", "null"]}}}
ALERTS = {"type": "object", "required": ["webhook"], "additionalProperties": False,
          "properties": {"webhook": {"type": ["string", "null"]}}}
CARE_REPORT = {"type": "object", "additionalProperties": False,
               "properties": {"progress": _STR, "result": {"type": "object"},
                              "error": {"type": "object"}}}


ROUTES: tuple[Endpoint, ...] = (
    Endpoint("GET", "/v1/openapi.json", openapi.openapi_doc, "This document"),
    Endpoint("GET", "/v1/server", server.server_info, "Versions, apps and disk usage"),
    Endpoint("GET", "/v1/whoami", system.whoami, "Who the caller is: token name and scope",
             returns="whoami"),
    Endpoint("GET", "/v1/server/services", system.services,
             "bindrop's own units (hub, proxy, timers) as systemd sees them", returns="services"),
    Endpoint("GET", "/v1/history", system.history, "The newest recorded events, oldest first",
             query=(("app", _STR, "only this app"),
                    ("limit", _INT, "how many (default 50, at most 500)")), returns="events"),
    Endpoint("PUT", "/v1/dashboard", system.setup_dashboard,
             "Set up the dashboard (a system app) at a host; changes only what differs",
             admin=True, body=DASHBOARD, returns="system_app"),
    Endpoint("GET", "/v1/bucket", bucket.show_bucket,
             "The bucket release blobs and backups go to (never its secret)", admin=True),
    Endpoint("PUT", "/v1/bucket", bucket.set_bucket,
             "Send release blobs and backups to this bucket (checked first); every blob here "
             "is written there", admin=True, body=BUCKET_SETTINGS),
    Endpoint("DELETE", "/v1/bucket", bucket.bucket_off,
             "No bucket: blobs and backups stay on this server", admin=True),
    Endpoint("GET", "/v1/apps", apps.list_apps, "List apps with their live state",
             query=(("all", _FLAG, "1: include bindrop's own (system) apps"),), returns="apps"),
    Endpoint("POST", "/v1/apps", apps.create_app, "Create an app", admin=True, body=NEW_APP,
             status=201, returns="app"),
    Endpoint("GET", "/v1/apps/{app}", apps.show_app, "Show an app's settings and live state",
             returns="app"),
    Endpoint("PATCH", "/v1/apps/{app}", apps.update_app,
             "Change an app's settings (restarts it if its limits change)", admin=True,
             body=APP_CHANGES),
    Endpoint("DELETE", "/v1/apps/{app}", apps.destroy_app,
             "Stop and delete an app; its data stays unless purge_data=1", admin=True,
             query=(("purge_data", _FLAG, "1: also delete the app's data directory"),)),
    Endpoint("GET", "/v1/apps/{app}/status", apps.app_status,
             "Settings, live state and metrics of an app"),
    Endpoint("GET", "/v1/apps/{app}/metrics", metrics.app_metrics,
             "Traffic and resources over time (steps of 10 s for the last hour, 1 min for 7 days)",
             query=(("since", _STR, "how far back: seconds or 15m, 1h, 7d (default 1h)"),
                    ("step", _STR, "seconds per point, or 1m, 1h (default: about 120 points)"))),
    Endpoint("GET", "/v1/metrics", metrics.overview,
             "Every app over a span: state, requests/s, errors, p50/p95, memory, CPU, a trend",
             query=(("since", _STR, "how far back: seconds or 1m, 1h (default 1h)"),
                    ("step", _STR, "seconds per trend point (default: about 120 points)"),
                    ("all", _FLAG, "1: system apps too"))),
    Endpoint("GET", "/metrics", metrics.prometheus,
             "Traffic and resources of every app in the Prometheus text format",
             produces="text/plain"),
    Endpoint("GET", "/v1/apps/{app}/releases", releases.list_releases,
             "List an app's releases, newest first", returns="releases"),
    Endpoint("POST", "/v1/apps/{app}/releases", releases.upload_release,
             "Upload a release (the raw file as the body, streamed)", admin=True,
             body="binary", status=201, expect=releases.check_upload_size, returns="release",
             query=(("kind", {"type": "string", "enum": ["binary", "bundle"]},
                     "binary (default): an executable; bundle: a .tar.gz"),
                    ("cmd", _STR, 'the command as a JSON list, e.g. ["./server"]'),
                    ("processes", _STR, 'process types as a JSON object, e.g. '
                                        '{"worker": ["--worker"]} (added to a Procfile)'),
                    ("release_cmd", _STR, 'the release command as a JSON list'))),
    Endpoint("POST", "/v1/apps/{app}/deploy", actions.deploy, "Deploy a release (zero downtime)",
             admin=True, body=DEPLOY, query=(WAIT,), returns="outcome_or_job"),
    Endpoint("POST", "/v1/apps/{app}/rollback", actions.rollback,
             "Deploy an earlier release (the one before the current by default)", admin=True,
             body=ROLLBACK, query=(WAIT,), returns="outcome_or_job"),
    Endpoint("POST", "/v1/apps/{app}/start", actions.start, "Start the current release",
             admin=True, query=(WAIT,), returns="outcome_or_job"),
    Endpoint("POST", "/v1/apps/{app}/stop", actions.stop, "Stop every unit of the app",
             admin=True, query=(WAIT,), returns="outcome_or_job"),
    Endpoint("POST", "/v1/apps/{app}/restart", actions.restart,
             "Restart the current release (zero downtime)", admin=True, query=(WAIT,),
             returns="outcome_or_job"),
    Endpoint("PUT", "/v1/apps/{app}/scale", actions.scale,
             "Set how many instances of each process run (and a process's memory limit or "
             "health path); applies at once to a running app", admin=True, body=SCALE,
             returns="outcome_or_job"),
    Endpoint("GET", "/v1/apps/{app}/processes", actions.processes,
             "The app's process types: command and instance count"),
    Endpoint("POST", "/v1/apps/{app}/run", runs.run,
             "Run a one-off command with the current release (its env, user, data, sandbox) "
             "as a transient unit; streams its output and exit status as JSON lines",
             admin=True, body=RUN, produces="application/x-ndjson"),
    Endpoint("GET", "/v1/jobs/{job}", actions.show_job, "How an action started with wait=0 ended"),
    Endpoint("GET", "/v1/apps/{app}/env", env.show_env,
             "An app's environment (secret-looking values masked)",
             query=(("reveal", _FLAG, "1: show every value (admin only)"),), returns="env"),
    Endpoint("PUT", "/v1/apps/{app}/env", env.set_env,
             "Set environment variables (restarts a running app)", admin=True, body=ENV,
             returns="env"),
    Endpoint("DELETE", "/v1/apps/{app}/env", env.unset_env,
             "Unset environment variables (restarts a running app)", admin=True,
             query=(("key", _STR, "a variable to unset (repeat for more)"),), returns="env"),
    Endpoint("PUT", "/v1/apps/{app}/limits", env.set_limits,
             "Change memory, CPU or task limits (restarts a running app)", admin=True,
             body=LIMITS),
    Endpoint("GET", "/v1/apps/{app}/logs", logs.logs,
             "The app's journal as JSON lines, optionally followed",
             produces="application/x-ndjson",
             query=(("lines", _INT, "how many past lines (default 100)"),
                    ("follow", _FLAG, "1: keep streaming new lines"),
                    ("cursor", _STR, "resume after this cursor"),
                    ("process", _STR, "only this process type (web, worker, release, run)"))),
    Endpoint("GET", "/v1/events", events.events,
             "Server-sent events of live state and recorded events (resumable)",
             produces="text/event-stream",
             query=(("app", _STR, "only this app"),
                    ("after", _INT, "recorded events after this id (or Last-Event-ID)"),
                    ("history", _INT, "start with this many past recorded events"))),
    Endpoint("GET", "/v1/apps/{app}/cron", cron.list_jobs, "List an app's scheduled jobs"),
    Endpoint("POST", "/v1/apps/{app}/cron", cron.add_job,
             "Add a scheduled job: a systemd timer running the current release with args",
             admin=True, body=NEW_JOB, status=201),
    Endpoint("DELETE", "/v1/apps/{app}/cron/{name}", cron.remove_job,
             "Remove a scheduled job (stops a run in progress)", admin=True),
    Endpoint("POST", "/v1/backups", backups.start_backup,
             "Start a backup of the server (or of one app) as a care unit; the run",
             admin=True, body=NEW_BACKUP, status=202, query=(_QUEUE, _CARE_WAIT)),
    Endpoint("GET", "/v1/backups", backups.list_all,
             "Complete backups, local and in the bucket, oldest first",
             query=(("app", _STR, "only those holding this app's data"),)),
    Endpoint("GET", "/v1/backups/{backup}", backups.show_backup,
             "A backup's manifest: its parts, sizes, sha256 and where it is stored"),
    Endpoint("POST", "/v1/backups/{backup}/verify", backups.verify_backup,
             "Check a backup (sizes, sha256, integrity_check) in a care unit; the run",
             admin=True, status=202, query=(_QUEUE, _CARE_WAIT)),
    Endpoint("POST", "/v1/apps/{app}/restore", backups.restore_app,
             "Restore an app's data from a backup (from: an id, or the newest), in its turn "
             "after the app's other actions; the run", admin=True, body=RESTORE, status=202,
             query=(_QUEUE, _CARE_WAIT)),
    Endpoint("POST", "/v1/server/restore", backups.restore_server,
             "Restore bindrop's own database from a server backup (from: an id, or the newest): "
             "checked, then the hub stops, the database is swapped, the hub starts again and "
             "records server_restored; the run (this hub never reports its end)", admin=True,
             body=RESTORE, status=202, query=(_QUEUE,)),
    Endpoint("POST", "/v1/gc", backups.gc,
             "Free unused blobs and backups beyond retention (dry_run: only say what); the run",
             admin=True, body=GC, status=202, query=(_QUEUE, _CARE_WAIT)),
    Endpoint("GET", "/v1/disk", backups.disk,
             "Filesystems holding bindrop's data, its parts' sizes, and the last checks"),
    Endpoint("POST", "/v1/disk/check", backups.disk_check,
             "Record a disk usage sample (bindrop-disk.timer); events on a change over or under "
             "the threshold", admin=True, body=DISK_CHECK),
    Endpoint("GET", "/v1/care/runs", backups.list_runs,
             "The care run in progress and the newest ones"),
    Endpoint("GET", "/v1/care/runs/{run}", backups.show_run,
             "A care run: state, progress, units, result or error"),
    Endpoint("GET", "/v1/alerts", alerts.show,
             "Where alerts go (the webhook) and how delivery goes", admin=True),
    Endpoint("PUT", "/v1/alerts", alerts.set_channel,
             "Set the webhook alerts are POSTed to (null: no alerts)", admin=True, body=ALERTS),
    Endpoint("POST", "/v1/alerts/test", alerts.test,
             "Send a test alert to the webhook now", admin=True),
    Endpoint("POST", "/v1/events", care.record_event,
             "Record the outcome of a backup, disk check or gc (bindrop's timers)", admin=True,
             body=CARE_EVENT, status=201),
    Endpoint("GET", "/v1/tls", tls.show_tls,
             "Automatic HTTPS: the CA, and each name's certificate state, expiry and last error"),
    Endpoint("PUT", "/v1/tls", tls.setup_tls,
             "Turn automatic HTTPS on: the account email and the ACME directory (Let's Encrypt "
             "by default; directory_ca: a CA bundle to trust for it)", admin=True,
             body=TLS_SETUP),
    Endpoint("DELETE", "/v1/tls", tls.disable_tls,
             "Turn automatic HTTPS off (certificates already issued keep serving)", admin=True),
    Endpoint("POST", "/v1/tls/renew", tls.renew_tls,
             "Ask the CA now for what is due (one name; force: even far from expiry)",
             admin=True, body=TLS_RENEW),
    Endpoint("GET", "/v1/tokens", tokens.list_tokens, "List tokens (never their secrets)",
             admin=True, returns="tokens"),
    Endpoint("POST", "/v1/tokens", tokens.create_token,
             "Create a token; its text is in this answer only", admin=True, body=NEW_TOKEN,
             status=201, returns="new_token"),
    Endpoint("DELETE", "/v1/tokens/{name}", tokens.revoke_token, "Revoke a token", admin=True,
             returns="token"),
    Endpoint("POST", "/v1/sessions", tokens.create_session,
             "Trade the caller's token for a dashboard session secret that expires (12 h)",
             status=201),
    Endpoint("DELETE", "/v1/sessions/current", tokens.end_session,
             "End the session this request came with"),
)

#: Routes of the unix socket only (not in the OpenAPI document): what care units tell the hub.
LOCAL_ROUTES: tuple[Endpoint, ...] = (
    Endpoint("POST", "/v1/care/steps/{step}/report", backups.report_step,
             "A care unit's progress, result or error", admin=True, body=CARE_REPORT),
)
