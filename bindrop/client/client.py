"""``Client``: the control API from anywhere — the local socket, TCP with a token, or SSH.

One class for every transport; methods return the API's JSON (plain dicts). An error answer
becomes a ``RemoteError`` carrying the server's status, code and message, so callers print
one line and exit non-zero. The token goes in a header and nowhere else.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import aiohttp

from bindrop.client.resolver import LocalhostResolver
from bindrop.client.servers import Endpoint, parse_server
from bindrop.client.ssh import SSHConnector, ssh_argv
from bindrop.errors import BindropError

CHUNK = 256 * 1024
CONNECT_TIMEOUT_S = 10.0


class RemoteError(BindropError):
    """An error the server answered with (or a failure to reach it: ``unreachable``)."""

    def __init__(self, message: str, *, status: int, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def _unreachable(endpoint: Endpoint, exc: BaseException) -> RemoteError:
    hint = ("is the hub running (systemctl status bindrop), and is --server right?"
            if endpoint.transport != "ssh" else
            "does `bindrop` run there in a non-interactive ssh session (else set "
            "BINDROP_REMOTE_COMMAND to its path, e.g. /opt/bindrop/bin/bindrop), is the hub "
            "running (systemctl status bindrop), and is --server right?")
    return RemoteError(f"cannot reach the bindrop server at {endpoint.url}: {exc}; {hint}",
                       status=503, code="unreachable")


class Client:
    """Talks to one server. Use as ``async with Client(url, token) as client: ...``."""

    def __init__(self, server: str | Endpoint, token: str | None = None, *,
                 ssh: Sequence[str] = ("ssh",), remote: Sequence[str] = ("bindrop",)) -> None:
        """``ssh`` and ``remote`` matter for ssh:// servers only (see ``ssh_argv``)."""
        self.endpoint = parse_server(server) if isinstance(server, str) else server
        self._token = token
        self._ssh = (list(ssh), list(remote))
        self._session: aiohttp.ClientSession | None = None
        self._ssh_connector: SSHConnector | None = None
        self._resolver: LocalhostResolver | None = None

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._resolver is not None:
            await self._resolver.close()
            self._resolver = None
        if self._ssh_connector is not None:
            await self._ssh_connector.reap()

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector: aiohttp.BaseConnector
            if self.endpoint.transport == "unix":
                assert self.endpoint.socket_path is not None
                connector = aiohttp.UnixConnector(path=self.endpoint.socket_path)
            elif self.endpoint.transport == "http":
                # The connector does not close a resolver it was given: close() does.
                self._resolver = LocalhostResolver()
                connector = aiohttp.TCPConnector(resolver=self._resolver)
            else:
                connector = self._ssh_connector = SSHConnector(ssh_argv(self.endpoint,
                                                                        *self._ssh))
            headers = {"User-Agent": "bindrop-client"}
            if self._token:
                headers["Authorization"] = f"Bearer {self._token}"
            self._session = aiohttp.ClientSession(
                connector=connector, headers=headers,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT_S))
        return self._session

    # -- the HTTP core -------------------------------------------------------------------

    async def request(self, method: str, path: str, *, body: Any = None,
                      params: Mapping[str, str] | list[tuple[str, str]] | None = None) -> Any:
        """Send a request; return the JSON answer, or raise ``RemoteError``."""
        session = self._open()
        try:
            async with session.request(method, self.endpoint.base + path, params=params,
                                       json=body) as response:
                return await _answer(response)
        except aiohttp.ClientError as exc:
            raise _unreachable(self.endpoint, exc) from None

    async def lines(self, path: str, *, params: Mapping[str, str] | None = None,
                    headers: Mapping[str, str] | None = None) -> AsyncIterator[bytes]:
        """The lines of a streamed answer (logs, events), as they arrive."""
        async for line in self._stream("GET", path, params=params, headers=headers):
            yield line

    async def post_lines(self, path: str, body: Any) -> AsyncIterator[bytes]:
        """The lines of a streamed answer to a POST (a one-off run), as they arrive."""
        async for line in self._stream("POST", path, json=body):
            yield line

    async def _stream(self, method: str, path: str, **options: Any) -> AsyncIterator[bytes]:
        session = self._open()
        try:
            async with session.request(method, self.endpoint.base + path,
                                       **options) as response:
                if response.status >= 400:
                    await _answer(response)
                async for line in response.content:
                    yield line
        except aiohttp.ClientError as exc:
            raise _unreachable(self.endpoint, exc) from None

    async def run(self, app: str, args: list[str]) -> AsyncIterator[dict[str, Any]]:
        """Run ``args`` with the app's release: ``{"unit"}``, ``{"message"}``...,
        ``{"exit_status"}``."""
        async for line in self.post_lines(f"/v1/apps/{_seg(app)}/run", {"args": args}):
            if line.strip():
                yield json.loads(line)

    async def run_plan(self, app: str, args: list[str]) -> Any:
        return await self.request("POST", f"/v1/apps/{_seg(app)}/run",
                                  body={"args": args, "plan": True})

    async def run_detached(self, app: str, args: list[str]) -> Any:
        return await self.request("POST", f"/v1/apps/{_seg(app)}/run",
                                  body={"args": args, "detach": True})

    async def upload(self, path: str, file: Path, *, params: Mapping[str, str],
                     progress: Callable[[int], None] | None = None) -> Any:
        """Stream ``file`` as the body; a file over the server's upload limit is refused
        before a byte is sent."""
        size = file.stat().st_size
        limit = (await self.server()).get("upload_limit")
        if isinstance(limit, int) and size > limit:
            raise RemoteError(f"{file} is {size} bytes, more than the server's upload limit "
                              f"of {limit} bytes (BINDROP_UPLOAD_LIMIT on the server)",
                              status=413, code="too_large")

        async def chunks() -> AsyncIterator[bytes]:
            with open(file, "rb") as f:
                while chunk := f.read(CHUNK):
                    yield chunk
                    if progress is not None:
                        progress(len(chunk))

        session = self._open()
        try:
            async with session.post(self.endpoint.base + path, params=params, data=chunks(),
                                    headers={"Content-Length": str(size),
                                             "Content-Type": "application/octet-stream"},
                                    ) as response:
                return await _answer(response)
        except aiohttp.ClientError as exc:
            raise _unreachable(self.endpoint, exc) from None

    # -- apps ----------------------------------------------------------------------------

    async def server(self) -> Any:
        return await self.request("GET", "/v1/server")

    async def apps(self, *, include_system: bool = False) -> Any:
        """Every app; bindrop's own (system) apps too with ``include_system``."""
        params = {"all": "1"} if include_system else None
        return (await self.request("GET", "/v1/apps", params=params))["apps"]

    async def whoami(self) -> Any:
        """``{"name", "scope", "admin"}`` of this client's token (or of root on the socket)."""
        return await self.request("GET", "/v1/whoami")

    async def services(self) -> Any:
        return (await self.request("GET", "/v1/server/services"))["services"]

    async def history(self, *, app: str | None = None, limit: int = 50) -> Any:
        params = {"limit": str(limit)} | ({"app": app} if app else {})
        return (await self.request("GET", "/v1/history", params=params))["events"]

    async def bucket(self) -> Any:
        return await self.request("GET", "/v1/bucket")

    async def set_bucket(self, settings: Mapping[str, Any]) -> Any:
        return await self.request("PUT", "/v1/bucket", body=dict(settings))

    async def bucket_off(self) -> Any:
        return await self.request("DELETE", "/v1/bucket")

    async def setup_dashboard(self, host: str) -> Any:
        return await self.request("PUT", "/v1/dashboard", body={"host": host})

    async def create_app(self, settings: Mapping[str, Any]) -> Any:
        return await self.request("POST", "/v1/apps", body=dict(settings))

    async def app(self, app: str) -> Any:
        return await self.request("GET", f"/v1/apps/{_seg(app)}")

    async def update_app(self, app: str, changes: Mapping[str, Any]) -> Any:
        return await self.request("PATCH", f"/v1/apps/{_seg(app)}", body=dict(changes))

    async def destroy_app(self, app: str, *, purge_data: bool = False) -> Any:
        return await self.request("DELETE", f"/v1/apps/{_seg(app)}",
                                  params={"purge_data": "1" if purge_data else "0"})

    async def status(self, app: str) -> Any:
        return await self.request("GET", f"/v1/apps/{_seg(app)}/status")

    # -- releases and actions ------------------------------------------------------------

    async def releases(self, app: str) -> Any:
        return (await self.request("GET", f"/v1/apps/{_seg(app)}/releases"))["releases"]

    async def upload_release(self, app: str, file: Path, *, command: list[str] | None = None,
                             bundle: bool = False,
                             progress: Callable[[int], None] | None = None,
                             processes: Mapping[str, list[str]] | None = None,
                             release_command: list[str] | None = None) -> Any:
        params = {"kind": "bundle" if bundle else "binary", "cmd": json.dumps(command or [])}
        if processes:
            params["processes"] = json.dumps(dict(processes))
        if release_command is not None:
            params["release_cmd"] = json.dumps(release_command)
        return await self.upload(f"/v1/apps/{_seg(app)}/releases", file, params=params,
                                 progress=progress)

    async def action(self, app: str, action: str, body: Mapping[str, Any] | None = None, *,
                     wait: bool = True) -> Any:
        """deploy, rollback, start, stop or restart; the outcome, or ``{"job": id}``."""
        return await self.request("POST", f"/v1/apps/{_seg(app)}/{action}",
                                  body=dict(body or {}), params={"wait": "1" if wait else "0"})

    async def deploy(self, app: str, release: int, *, wait: bool = True,
                     rolling: bool = False) -> Any:
        body: dict[str, Any] = {"release": release}
        if rolling:
            body["rolling"] = True
        return await self.action(app, "deploy", body, wait=wait)

    async def scale(self, app: str, counts: Mapping[str, int], *,
                    memory_max: Mapping[str, str | None] | None = None,
                    health_path: Mapping[str, str | None] | None = None) -> Any:
        body: dict[str, Any] = {"counts": dict(counts)}
        if memory_max:
            body["memory_max"] = dict(memory_max)
        if health_path:
            body["health_path"] = dict(health_path)
        return await self.request("PUT", f"/v1/apps/{_seg(app)}/scale", body=body)

    async def processes(self, app: str) -> Any:
        return await self.request("GET", f"/v1/apps/{_seg(app)}/processes")

    async def job(self, job_id: str) -> Any:
        return await self.request("GET", f"/v1/jobs/{_seg(job_id)}")

    # -- env and limits ------------------------------------------------------------------

    async def env(self, app: str, *, reveal: bool = False) -> Any:
        return await self.request("GET", f"/v1/apps/{_seg(app)}/env",
                                  params={"reveal": "1" if reveal else "0"})

    async def set_env(self, app: str, values: Mapping[str, str]) -> Any:
        return await self.request("PUT", f"/v1/apps/{_seg(app)}/env", body=dict(values))

    async def unset_env(self, app: str, keys: list[str]) -> Any:
        return await self.request("DELETE", f"/v1/apps/{_seg(app)}/env",
                                  params=[("key", k) for k in keys])

    async def set_limits(self, app: str, limits: Mapping[str, Any]) -> Any:
        return await self.request("PUT", f"/v1/apps/{_seg(app)}/limits", body=dict(limits))

    # -- tokens --------------------------------------------------------------------------

    async def tokens(self) -> Any:
        return (await self.request("GET", "/v1/tokens"))["tokens"]

    async def create_token(self, name: str, *, read_only: bool = False,
                           expires: str | None = None) -> Any:
        return await self.request("POST", "/v1/tokens", body={
            "name": name, "scope": "read-only" if read_only else "admin", "expires": expires})

    async def create_session(self) -> Any:
        """A dashboard session secret standing for this client's token."""
        return await self.request("POST", "/v1/sessions")

    async def end_session(self) -> Any:
        return await self.request("DELETE", "/v1/sessions/current")

    async def revoke_token(self, name: str) -> Any:
        return await self.request("DELETE", f"/v1/tokens/{_seg(name)}")

    # -- automatic HTTPS -----------------------------------------------------------------

    async def tls(self) -> Any:
        return await self.request("GET", "/v1/tls")

    async def setup_tls(self, email: str, *, directory: str | None = None,
                        directory_ca: str | None = None, staging: bool = False) -> Any:
        return await self.request("PUT", "/v1/tls", body={
            "email": email, "directory": directory, "directory_ca": directory_ca,
            "staging": staging})

    async def disable_tls(self) -> Any:
        return await self.request("DELETE", "/v1/tls")

    async def renew_tls(self, name: str | None = None, *, force: bool = False) -> Any:
        return (await self.request("POST", "/v1/tls/renew",
                                   body={"name": name, "force": force}))["names"]

    # -- server care ---------------------------------------------------------------------

    async def record_event(self, kind: str, message: str, *, app: str | None = None,
                           data: Mapping[str, Any] | None = None) -> Any:
        """Record a care outcome (``backup_succeeded``, ``disk_over_threshold``, …)."""
        return await self.request("POST", "/v1/events", body={
            "kind": kind, "app": app, "message": message,
            "data": dict(data) if data is not None else None})

    async def start_backup(self, app: str | None = None, *, queue: bool = False,
                           wait: bool = False) -> Any:
        """Start a backup run (the server, or one app); the run (``state``, ``progress``…)."""
        return await self.request("POST", "/v1/backups", body={"app": app},
                                  params=_care_params(queue, wait))

    async def backups(self, app: str | None = None) -> Any:
        params = {"app": app} if app else None
        return (await self.request("GET", "/v1/backups", params=params))["backups"]

    async def backup(self, backup_id: str) -> Any:
        return await self.request("GET", f"/v1/backups/{_seg(backup_id)}")

    async def verify_backup(self, backup_id: str, *, queue: bool = False,
                            wait: bool = False) -> Any:
        return await self.request("POST", f"/v1/backups/{_seg(backup_id)}/verify",
                                  params=_care_params(queue, wait))

    async def restore(self, app: str, backup_id: str | None = None, *, queue: bool = False,
                      wait: bool = False) -> Any:
        return await self.request("POST", f"/v1/apps/{_seg(app)}/restore",
                                  body={"from": backup_id}, params=_care_params(queue, wait))

    async def restore_server(self, backup_id: str | None = None, *,
                             queue: bool = False) -> Any:
        return await self.request("POST", "/v1/server/restore", body={"from": backup_id},
                                  params={"queue": "1" if queue else "0"})

    async def gc(self, *, dry_run: bool = False, queue: bool = False,
                 wait: bool = False) -> Any:
        return await self.request("POST", "/v1/gc", body={"dry_run": dry_run},
                                  params=_care_params(queue, wait))

    async def disk(self) -> Any:
        return await self.request("GET", "/v1/disk")

    async def disk_check(self, threshold: str | None = None) -> Any:
        return await self.request("POST", "/v1/disk/check", body={"threshold": threshold})

    async def care_run(self, run_id: str) -> Any:
        return await self.request("GET", f"/v1/care/runs/{_seg(run_id)}")

    async def care_runs(self) -> Any:
        return await self.request("GET", "/v1/care/runs")

    async def alerts(self) -> Any:
        return await self.request("GET", "/v1/alerts")

    async def set_alerts(self, webhook: str | None) -> Any:
        return await self.request("PUT", "/v1/alerts", body={"webhook": webhook})

    async def test_alert(self) -> Any:
        return await self.request("POST", "/v1/alerts/test")

    async def cron_jobs(self, app: str) -> Any:
        return (await self.request("GET", f"/v1/apps/{_seg(app)}/cron"))["jobs"]

    async def add_cron_job(self, app: str, schedule: str, args: Sequence[str], *,
                           name: str | None = None) -> Any:
        return await self.request("POST", f"/v1/apps/{_seg(app)}/cron", body={
            "name": name, "schedule": schedule, "args": list(args)})

    async def remove_cron_job(self, app: str, name: str) -> Any:
        return await self.request("DELETE", f"/v1/apps/{_seg(app)}/cron/{_seg(name)}")

    # metrics

    async def metrics(self, app: str, *, since: str | None = None,
                      step: str | None = None) -> Any:
        params = {k: v for k, v in (("since", since), ("step", step)) if v}
        return await self.request("GET", f"/v1/apps/{_seg(app)}/metrics", params=params)

    async def metrics_overview(self, *, since: str | None = None, step: str | None = None,
                               include_system: bool = False) -> Any:
        params = {k: v for k, v in (("since", since), ("step", step)) if v}
        if include_system:
            params["all"] = "1"
        return await self.request("GET", "/v1/metrics", params=params)

    async def prometheus(self) -> str:
        """``/metrics`` as text (the Prometheus format)."""
        session = self._open()
        try:
            async with session.get(self.endpoint.base + "/metrics") as response:
                if response.status >= 400:
                    await _answer(response)
                return await response.text()
        except aiohttp.ClientError as exc:
            raise _unreachable(self.endpoint, exc) from None

    # -- streams -------------------------------------------------------------------------

    async def logs(self, app: str, *, lines: int = 100, follow: bool = False,
                   cursor: str | None = None, process: str | None = None
                   ) -> AsyncIterator[dict[str, Any]]:
        params = {"lines": str(lines), "follow": "1" if follow else "0"}
        if process:
            params["process"] = process
        if cursor:
            params["cursor"] = cursor
        async for line in self.lines(f"/v1/apps/{_seg(app)}/logs", params=params):
            if line.strip():
                yield json.loads(line)

    async def events(self, *, app: str | None = None, after: int | None = None
                     ) -> AsyncIterator[tuple[str, dict[str, Any], int | None]]:
        """``(kind, data, id)`` of each server-sent event: kind "state" or "event"."""
        params = {"app": app} if app else {}
        headers = {"Last-Event-ID": str(after)} if after is not None else {}
        kind, data, event_id = "message", "", None
        async for raw in self.lines("/v1/events", params=params, headers=headers):
            line = raw.decode().rstrip("\r\n")
            if not line:
                if data:
                    yield kind, json.loads(data), event_id
                kind, data, event_id = "message", "", None
            elif line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:"):
                data += line[5:].strip()
            elif line.startswith("id:"):
                event_id = int(line[3:].strip())


async def _answer(response: aiohttp.ClientResponse) -> Any:
    text = await response.text()
    try:
        body = json.loads(text) if text else None
    except ValueError:
        body = None
    if response.status < 400:
        return body
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        raise RemoteError(error["message"], status=response.status,
                          code=str(error.get("code", "error")))
    hint = ""
    if response.status == 404:  # not an answer of the API (its 404s say what is missing)
        hint = ("; no bindrop API answers at this address: over HTTP it is the proxy's control "
                "host (`bindrop install --control-host`; on a machine, $BINDROP_REMOTE_URL "
                "from `bindrop machine env`)")
    raise RemoteError(f"the server answered {response.status} {response.reason}{hint}",
                      status=response.status, code=f"http_{response.status}")


def _care_params(queue: bool, wait: bool) -> dict[str, str]:
    return {"queue": "1" if queue else "0", "wait": "1" if wait else "0"}


def _seg(value: str) -> str:
    """A path segment, quoted so a name cannot change which route is called."""
    return quote(value, safe="")
