"""The dashboard's handlers against a real hub's control API (aiohttp's test client, no
browser), and the hub setting the dashboard up as a system app."""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from bindrop.api import ApiServer
from bindrop.client.client import Client, RemoteError
from bindrop.dashboard import make_dashboard_app
from bindrop.dashboard.context import SESSIONS
from bindrop.errors import Conflict, Unauthorized
from bindrop.hub.commands import Deploy
from bindrop.hub.hub import Hub
from bindrop.hub.state import AppRunState
from bindrop.hub.system import DASHBOARD_APP

from .hubkit import HANG, add_app, http_get, in_state, wait_for_app

pytestmark = pytest.mark.integration

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
async def dashboard(api: ApiServer) -> AsyncIterator[TestClient[aiohttp.web.Request,
                                                                aiohttp.web.Application]]:
    """The dashboard on a free port, talking to the hub's TCP API. Its cookie jar takes the
    Secure cookies over plain HTTP to 127.0.0.1, as browsers do for localhost."""
    app = make_dashboard_app(f"http://127.0.0.1:{api.tcp_port}")
    server = TestServer(app)
    await server.start_server()
    jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=str(server.make_url("/")))
    client = TestClient(server, cookie_jar=jar)
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


Dash = TestClient[aiohttp.web.Request, aiohttp.web.Application]


async def token(hub: Hub, name: str, scope: str = "admin") -> str:
    text, _ = hub.config.create_token(name, scope)  # type: ignore[arg-type]
    return text


def csrf_of(page: str) -> str:
    found = CSRF.search(page)
    assert found, "no CSRF field in the page"
    return found.group(1)


async def log_in(dash: Dash, text: str) -> str:
    """Log in; return the session's CSRF token (from the apps page)."""
    form = await dash.get("/login")
    answer = await dash.post("/login", data={"token": text, "csrf": csrf_of(await form.text())},
                             allow_redirects=False)
    assert answer.status == 303 and answer.headers["Location"] == "/"
    cookie = answer.cookies["bindrop_session"]
    assert cookie["httponly"] and cookie["secure"] and cookie["samesite"] == "Strict"
    assert text not in cookie.value
    page = await dash.get("/")
    assert page.status == 200
    return csrf_of(await page.text())


async def test_every_page_leads_to_the_login_without_a_session(dashboard: Dash) -> None:
    for path in ("/", "/apps/x", "/server", "/tokens"):
        answer = await dashboard.get(path, allow_redirects=False)
        assert (answer.status, answer.headers["Location"]) == (303, "/login"), path
    answer = await dashboard.post("/apps/x/stop", data={"csrf": "x"}, allow_redirects=False)
    assert answer.headers["Location"] == "/login"
    assert (await dashboard.get("/healthz")).status == 200
    login = await dashboard.get("/login")
    assert "script-src 'self'" in login.headers["Content-Security-Policy"]
    assert login.headers["X-Frame-Options"] == "DENY"
    assert "plain HTTP" not in await login.text()  # 127.0.0.1: a secure context
    remote = await dashboard.get("/login", headers={"Host": "dash.example.com"})
    assert "plain HTTP" in await remote.text()


async def test_a_wrong_token_or_a_login_post_from_elsewhere_gets_no_session(
    dashboard: Dash, hub: Hub
) -> None:
    good = await token(hub, "dash-good")
    form = await dashboard.get("/login")
    csrf = csrf_of(await form.text())
    wrong = await dashboard.post("/login", data={"token": "bd_nope", "csrf": csrf},
                                 allow_redirects=False)
    assert wrong.status == 401 and "not valid" in await wrong.text()
    assert "bindrop_session" not in wrong.cookies
    # A form posted from another site has no matching login cookie.
    dashboard.session.cookie_jar.clear()
    forged = await dashboard.post("/login", data={"token": good, "csrf": csrf},
                                  allow_redirects=False)
    assert forged.status == 403 and "bindrop_session" not in forged.cookies


async def test_an_admin_sees_an_app_and_stops_it_only_with_the_forms_csrf_token(
    dashboard: Dash, hub: Hub
) -> None:
    add_app(hub.store, hub.blobs, "dash-a")
    await hub.call("dash-a", Deploy(1))
    csrf = await log_in(dashboard, await token(hub, "dash-admin"))
    apps = await (await dashboard.get("/")).text()
    assert 'data-app="dash-a"' in apps and "running" in apps
    assert ">dash-a.test</a>" in apps
    behind_tls = await dashboard.get("/", headers={"Host": "dash.example.com",
                                                   "X-Forwarded-Proto": "https"})
    assert 'href="https://dash-a.test/"' in await behind_tls.text()
    shown = await (await dashboard.get("/metrics.json?app=dash-a")).json()
    assert shown["dash-a"]["memory"].endswith("B") and set(shown["dash-a"]) == {"memory", "cpu"}
    assert "dash-a" in await (await dashboard.get("/metrics.json")).json()
    page = await (await dashboard.get("/apps/dash-a")).text()
    assert 'value="stop"' in page and "Roll back" not in page  # one release: nothing to undo
    refused = await dashboard.post("/apps/dash-a/stop", data={"csrf": "forged"},
                                   allow_redirects=False)
    assert refused.status == 403
    assert hub.state.app("dash-a") is not None
    stopped = await dashboard.post("/apps/dash-a/stop", data={"csrf": csrf},
                                   headers={"X-Requested-With": "fetch"})
    assert await stopped.json() == {"ok": True, "message": "dash-a is stopped"}
    await wait_for_app(hub, "dash-a", lambda v: v is None or v.state == AppRunState.STOPPED)


async def test_a_read_only_token_sees_no_buttons_and_its_posts_are_refused_by_the_api(
    dashboard: Dash, hub: Hub
) -> None:
    add_app(hub.store, hub.blobs, "dash-r")
    await hub.call("dash-r", Deploy(1))
    csrf = await log_in(dashboard, await token(hub, "dash-reader", "read-only"))
    page = await (await dashboard.get("/apps/dash-r")).text()
    assert 'value="stop"' not in page and "read-only" in page
    answer = await dashboard.post("/apps/dash-r/stop", data={"csrf": csrf})
    assert "is read-only and cannot" in await answer.text()
    view = hub.state.app("dash-r")
    assert view is not None and view.state == AppRunState.RUNNING
    tokens = await (await dashboard.get("/tokens")).text()
    assert "cannot list or create tokens" in tokens


async def test_a_new_token_is_shown_once_and_can_be_revoked(dashboard: Dash, hub: Hub) -> None:
    csrf = await log_in(dashboard, await token(hub, "dash-tokens"))
    created = await dashboard.post("/tokens", data={"csrf": csrf, "name": "dash-new",
                                                    "scope": "read-only"})
    page = await created.text()
    text = re.search(r'<code id="new-token">([^<]+)</code>', page)
    assert text and created.headers["Cache-Control"] == "no-store"
    assert hub.config.authenticate(text.group(1)).scope == "read-only"
    listing = await (await dashboard.get("/tokens")).text()
    assert 'data-token="dash-new"' in listing and text.group(1) not in listing
    await dashboard.post("/tokens/dash-new/revoke", data={"csrf": csrf})
    assert next(t for t in hub.config.list_tokens() if t.name == "dash-new").revoked


async def test_a_revoked_token_ends_its_session(dashboard: Dash, hub: Hub) -> None:
    await log_in(dashboard, await token(hub, "dash-gone"))
    hub.config.revoke_token("dash-gone")
    answer = await dashboard.get("/server", allow_redirects=False)
    assert (answer.status, answer.headers["Location"]) == (303, "/login")
    again = await dashboard.get("/", allow_redirects=False)
    assert again.headers["Location"] == "/login"  # the session is gone, not just refused


async def test_env_values_that_look_secret_are_masked_and_setting_one_names_only_its_key(
    dashboard: Dash, hub: Hub
) -> None:
    add_app(hub.store, hub.blobs, "dash-e")
    csrf = await log_in(dashboard, await token(hub, "dash-env"))
    answer = await dashboard.post("/apps/dash-e/env", data={
        "csrf": csrf, "key": "API_SECRET", "value": "hunter2-very-secret"})
    page = await answer.text()
    assert "API_SECRET set" in page and "hunter2-very-secret" not in page
    limits = await dashboard.post("/apps/dash-e/limits", data={
        "csrf": csrf, "memory_max": "256M", "cpu_quota": "", "tasks_max": "64"})
    assert "limits saved" in await limits.text()
    assert hub.store.get_app("dash-e").memory_max == 256 * 1024**2
    bad = await dashboard.post("/apps/dash-e/limits", data={
        "csrf": csrf, "memory_max": "lots", "cpu_quota": "", "tasks_max": ""})
    assert 'class="flash error"' in await bad.text()


async def test_the_live_stream_passes_on_the_hubs_state(dashboard: Dash, hub: Hub) -> None:
    add_app(hub.store, hub.blobs, "dash-l")
    await hub.call("dash-l", Deploy(1))
    await log_in(dashboard, await token(hub, "dash-live"))
    async with asyncio.timeout(HANG):
        answer = await dashboard.get("/live/events?app=dash-l")
        assert answer.headers["Content-Type"].startswith("text/event-stream")
        seen = b""
        while b'"state":"running"' not in seen:
            seen += await answer.content.readany()
        answer.close()
        logs = await dashboard.get("/live/logs/dash-l")
        seen = b""
        while b"hello: listening" not in seen:
            seen += await logs.content.readany()
        assert b"event: line" in seen
        logs.close()


async def test_the_hub_runs_the_dashboard_as_a_hidden_system_app_and_setup_is_idempotent(
    hub: Hub, api: ApiServer
) -> None:
    url = f"http://127.0.0.1:{api.tcp_port}"
    first = await hub.system_apps.ensure_dashboard("Dash.Test", api_url=url)
    assert (first.app, first.host, first.changed) == (DASHBOARD_APP, "dash.test",
                                                      ("created", "release"))
    view = await wait_for_app(hub, DASHBOARD_APP, in_state(AppRunState.RUNNING))
    assert view is not None and view.route is not None
    status, body = await http_get(view.route.port, "/healthz")
    assert (status, body) == (200, "ok\n")
    status, _ = await http_get(view.route.port, "/")
    assert status == 303
    again = await hub.system_apps.ensure_dashboard("dash.test", api_url=url)
    assert (again.release, again.changed) == (first.release, ())
    moved = await hub.system_apps.ensure_dashboard("dash2.test", api_url=url)
    assert moved.changed == ("host",) and hub.store.get_app(DASHBOARD_APP).hosts == ("dash2.test",)
    async with Client(f"unix:{api.socket_path}") as client:
        assert DASHBOARD_APP not in [a["name"] for a in await client.apps()]
        every = {a["name"]: a for a in await client.apps(include_system=True)}
        assert every[DASHBOARD_APP]["system"] is True
        with pytest.raises(RemoteError, match="bindrop's own"):
            await client.destroy_app(DASHBOARD_APP)
        # This test API listens on a random port: the hub cannot point the dashboard at it.
        with pytest.raises(RemoteError, match=r"fixed TCP port|TCP control API"):
            await client.setup_dashboard("dash.test")
    with pytest.raises(Conflict):
        await hub.system_apps.ensure_dashboard("bindrop.localhost", api_url=url)  # the control host
    for flags, shown in (((), False), (("--all",), True)):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bindrop", "apps", *flags, "--server",
            f"unix:{api.socket_path}", stdout=asyncio.subprocess.PIPE)
        out, _ = await proc.communicate()
        assert (f"{DASHBOARD_APP} (system)" in out.decode()) is shown


async def test_whoami_and_history_over_tcp(hub: Hub, api: ApiServer) -> None:
    reader = await token(hub, "dash-who", "read-only")
    async with Client(f"http://127.0.0.1:{api.tcp_port}", reader) as client:
        assert await client.whoami() == {"name": "token dash-who", "scope": "read-only",
                                         "admin": False}
        events = await client.history(limit=5)
        assert events and events[-1]["kind"] == "token_created"
        assert isinstance(await client.services(), list)


async def test_the_server_page_shows_the_last_backup_and_its_failure(
    dashboard: Dash, hub: Hub
) -> None:
    await log_in(dashboard, await token(hub, "dash-care"))
    hub.store.add_event("backup_succeeded", None, "backup 20261128-0300 done, 3 parts", None)
    hub.store.add_event("backup_failed", None, "no space left on /var/backups (dash-care)", None)
    page = await (await dashboard.get("/server")).text()
    shown = dict(re.findall(r'<dd data-care="(\w+)">(.*?)</dd>', page, re.S))
    assert "backup 20261128-0300 done" in shown["last_backup"]
    assert "no space left on /var/backups (dash-care)" in shown["last_backup_failure"]


async def test_the_app_page_shows_processes_and_scales_them_with_the_form(
    dashboard: Dash, hub: Hub
) -> None:
    add_app(hub.store, hub.blobs, "dash-s")
    await hub.call("dash-s", Deploy(1))
    csrf = await log_in(dashboard, await token(hub, "dash-scaler"))
    page = await (await dashboard.get("/apps/dash-s")).text()
    assert 'data-process="web"' in page and 'name="count_web" value="1"' in page
    forged = await dashboard.post("/apps/dash-s/scale", data={"csrf": "x", "count_web": "2"},
                                  allow_redirects=False)
    assert forged.status == 403
    too_many = await dashboard.post("/apps/dash-s/scale",
                                    data={"csrf": csrf, "count_web": "99"},
                                    headers={"X-Requested-With": "fetch"})
    assert "above the limit" in (await too_many.json())["message"]
    scaled = await dashboard.post("/apps/dash-s/scale", data={"csrf": csrf, "count_web": "2"},
                                  headers={"X-Requested-With": "fetch"})
    assert (await scaled.json())["ok"] is True
    page = await (await dashboard.get("/apps/dash-s")).text()
    assert "1_web_2" in page


async def test_the_server_page_shows_https_names_and_the_cas_reason_for_a_failure(
    dashboard: Dash, hub: Hub
) -> None:
    from bindrop.hub.tls import TlsManager

    await log_in(dashboard, await token(hub, "dash-tls"))
    hub.tls = TlsManager(hub.settings, hub.store, None, hub.events)
    try:
        hub.store.set_tls_settings("ops@example.com", "https://ca.example.com/dir")
        hub.store.add_event("tls_failed", None, "no certificate for dash.example.com: DNS "
                            "problem: NXDOMAIN looking up A for dash.example.com <script>",
                            {"name": "dash.example.com"})
        page = await (await dashboard.get("/server")).text()
    finally:
        await hub.tls.close()
        hub.tls = None
        hub.store.disable_tls()
    shown = dict(re.findall(r'<dd data-tls="(\w+)">(.*?)</dd>', page, re.S))
    assert shown["enabled"] == "on"
    assert "NXDOMAIN looking up A for dash.example.com &lt;script&gt;" in shown["last_failure"]


async def test_a_session_survives_a_restart_of_the_dashboard_and_logging_out_ends_it(
        dashboard: Dash, hub: Hub, api: ApiServer) -> None:
    csrf = await log_in(dashboard, await token(hub, "dash-restart"))
    secret = next(c.value for c in dashboard.session.cookie_jar
                  if c.key == "bindrop_session")
    assert secret.startswith("bds_")
    # Kept hashed: the secret itself is nowhere in the database.
    assert not list(hub.store.db.query("SELECT 1 FROM sessions WHERE hash = ?", [secret]))
    # A second dashboard process (nothing in memory) takes the same cookie.
    app = make_dashboard_app(f"http://127.0.0.1:{api.tcp_port}")
    server = TestServer(app)
    await server.start_server()
    jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=str(server.make_url("/")))
    jar.update_cookies({"bindrop_session": secret}, server.make_url("/"))
    restarted = TestClient(server, cookie_jar=jar)
    await restarted.start_server()
    try:
        page = await restarted.get("/", allow_redirects=False)
        assert page.status == 200
        assert csrf_of(await page.text()) == csrf  # forms rendered before still post
        out = await restarted.post("/logout", data={"csrf": csrf}, allow_redirects=False)
        assert (out.status, out.headers["Location"]) == (303, "/login")
    finally:
        await restarted.close()
    with pytest.raises(Unauthorized):
        hub.config.authenticate(secret)
    gone = await dashboard.get("/", allow_redirects=False)
    assert gone.headers["Location"] == "/login"  # the first process asked again: ended


async def test_a_forged_or_expired_session_cookie_leads_to_the_login(
        dashboard: Dash, hub: Hub) -> None:
    await log_in(dashboard, await token(hub, "dash-expired"))
    secret = next(c.value for c in dashboard.session.cookie_jar
                  if c.key == "bindrop_session")
    hub.store.db.execute("UPDATE sessions SET expires_at = '2000-01-01T00:00:00+00:00'")
    dashboard.app[SESSIONS].drop(secret)  # as after a restart: the API decides
    answer = await dashboard.get("/", allow_redirects=False)
    assert answer.headers["Location"] == "/login"
    dashboard.session.cookie_jar.update_cookies({"bindrop_session": "bds_" + "x" * 43})
    answer = await dashboard.get("/", allow_redirects=False)
    assert answer.headers["Location"] == "/login"


async def test_logins_from_one_address_stop_after_ten_failures(dashboard: Dash,
                                                               hub: Hub) -> None:
    good = await token(hub, "dash-limited")
    for _ in range(10):
        form = await dashboard.get("/login")
        wrong = await dashboard.post("/login", data={"token": "bd_guess",
                                                     "csrf": csrf_of(await form.text())},
                                     allow_redirects=False)
        assert wrong.status == 401
    form = await dashboard.get("/login")
    refused = await dashboard.post("/login", data={"token": good,
                                                   "csrf": csrf_of(await form.text())},
                                   allow_redirects=False)
    assert refused.status == 429
    assert "too many failed logins" in await refused.text()
    # Another address (as the proxy reports it) is not held back.
    form = await dashboard.get("/login")
    other = await dashboard.post("/login", data={"token": good,
                                                 "csrf": csrf_of(await form.text())},
                                 headers={"X-Forwarded-For": "192.0.2.7"},
                                 allow_redirects=False)
    assert other.status == 303


async def test_an_upload_without_the_sessions_csrf_first_is_refused_before_the_file(
        dashboard: Dash, hub: Hub) -> None:
    csrf = await log_in(dashboard, await token(hub, "dash-upload"))
    await dashboard.post("/apps", data={"csrf": csrf, "name": "upl", "hosts": "upl.test"})

    def form(*fields: tuple[str, str]) -> aiohttp.FormData:
        data = aiohttp.FormData()
        for name, value in fields:
            if name == "file":
                data.add_field("file", value.encode(), filename="app.bin")
            else:
                data.add_field(name, value)
        return data

    for fields in ((("csrf", "forged"), ("file", "x" * 100)),
                   (("file", "x" * 100), ("csrf", csrf)),  # the file before the check
                   (("file", "x" * 100),)):
        answer = await dashboard.post("/apps/upl/releases", data=form(*fields),
                                      allow_redirects=False)
        assert answer.status == 403, fields
    assert hub.store.list_releases("upl") == []
    ok = await dashboard.post("/apps/upl/releases", data=form(
        ("csrf", csrf), ("command", "--label a"), ("file", "#!/bin/sh\necho hi\n")),
        headers={"X-Requested-With": "fetch"})
    assert (await ok.json()) == {"ok": True, "message": "release 1 of upl uploaded"}
    assert [r.number for r in hub.store.list_releases("upl")] == [1]


async def test_guessing_session_cookies_counts_as_failed_logins(dashboard: Dash,
                                                                hub: Hub) -> None:
    good = await token(hub, "dash-guessed")
    for i in range(10):
        dashboard.session.cookie_jar.update_cookies(
            {"bindrop_session": f"bds_{i:02d}" + "x" * 41})
        answer = await dashboard.get("/", allow_redirects=False)
        assert answer.headers["Location"] == "/login"
    form = await dashboard.get("/login")
    refused = await dashboard.post("/login", data={"token": good,
                                                   "csrf": csrf_of(await form.text())},
                                   allow_redirects=False)
    assert refused.status == 429


async def test_a_pages_background_refresh_leaves_the_message_for_the_next_page(
    dashboard: Dash, hub: Hub
) -> None:
    # Found in CI: the apps list's live refresh took "app fresh created" before the
    # redirected page could show it.
    add_app(hub.store, hub.blobs, "dash-f")
    csrf = await log_in(dashboard, await token(hub, "dash-flash"))
    answer = await dashboard.post("/apps/dash-f/limits", allow_redirects=False, data={
        "csrf": csrf, "memory_max": "256M", "cpu_quota": "", "tasks_max": ""})
    assert answer.status == 303
    refresh = await dashboard.get("/", headers={"X-Requested-With": "fetch"})
    assert "limits saved" not in await refresh.text()
    assert "limits saved" in await (await dashboard.get(answer.headers["Location"])).text()
