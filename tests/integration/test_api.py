"""The control API through real sockets: the unix socket (root, no token) and TCP (tokens)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import json
import logging
import socket
import tarfile
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bindrop.api import ApiServer, serve_api
from bindrop.api.serve import SHUTDOWN_TIMEOUT_S
from bindrop.client.client import Client, RemoteError
from bindrop.errors import Conflict
from bindrop.hub.commands import Deploy, Stop
from bindrop.hub.hub import Hub
from bindrop.machine import Machine
from bindrop.settings import Settings
from bindrop.store import BlobStore, Store

from .hubkit import API_UPLOAD_LIMIT, HANG, HELLO, add_app, http_get, wait_for_app

pytestmark = pytest.mark.integration


def local(api: ApiServer) -> Client:
    return Client(f"unix:{api.socket_path}")


def remote(api: ApiServer, token: str | None = None) -> Client:
    return Client(f"http://127.0.0.1:{api.tcp_port}", token)


async def new_app(client: Client, name: str, *args: str) -> int:
    """Create ``name`` and upload the example app as a release; return its number."""
    await client.create_app({"name": name, "hosts": [f"{name}.test"]})
    release = await client.upload_release(name, HELLO, command=list(args))
    return int(release["number"])


async def test_the_unix_socket_needs_no_token(api: ApiServer) -> None:
    async with local(api) as client:
        created = await client.create_app({"name": "sock", "hosts": ["sock.test"]})
        assert created["name"] == "sock" and created["live"]["state"] == "stopped"
        assert [a["name"] for a in await client.apps()] == ["sock"]
    assert oct(api.socket_path.stat().st_mode & 0o777) == "0o600"


async def test_tcp_without_a_token_is_refused_with_401(api: ApiServer) -> None:
    async with remote(api) as client:
        with pytest.raises(RemoteError) as refused:
            await client.apps()
    assert refused.value.status == 401 and refused.value.code == "unauthorized"
    async with remote(api, "bd_not-a-real-token") as client:
        with pytest.raises(RemoteError) as wrong:
            await client.apps()
    assert wrong.value.status == 401


async def test_a_read_only_token_reads_but_cannot_change_anything(api: ApiServer) -> None:
    async with local(api) as admin:
        await admin.create_app({"name": "ro", "hosts": ["ro.test"]})
        await admin.set_env("ro", {"API_KEY": "s3cret", "MODE": "x"})
        token = (await admin.create_token("viewer", read_only=True))["token"]
    async with remote(api, token) as viewer:
        assert [a["name"] for a in await viewer.apps()] == ["ro"]
        assert (await viewer.env("ro"))["env"] == {"API_KEY": "••••", "MODE": "x"}
        attempts = [
            viewer.create_app({"name": "nope", "hosts": ["nope.test"]}),
            viewer.update_app("ro", {"no_overlap": True}),
            viewer.set_env("ro", {"A": "1"}),
            viewer.unset_env("ro", ["MODE"]),
            viewer.set_limits("ro", {"memory_max": "64M"}),
            viewer.action("ro", "stop"),
            viewer.upload_release("ro", HELLO),
            viewer.destroy_app("ro"),
            viewer.env("ro", reveal=True),
            viewer.create_token("more"),
            viewer.tokens(),
        ]
        for attempt in attempts:
            with pytest.raises(RemoteError) as refused:
                await attempt
            assert refused.value.status == 403, refused.value.message
    async with local(api) as admin:
        assert (await admin.env("ro", reveal=True))["env"] == {"API_KEY": "s3cret", "MODE": "x"}
        assert await admin.releases("ro") == []
        assert [a["name"] for a in await admin.apps()] == ["ro"]


async def test_a_revoked_token_stops_working(api: ApiServer) -> None:
    async with local(api) as admin:
        token = (await admin.create_token("ci"))["token"]
    async with remote(api, token) as ci:
        assert await ci.apps() == []
        await ci.revoke_token("ci")
        with pytest.raises(RemoteError) as refused:
            await ci.apps()
    assert refused.value.status == 401
    async with local(api) as admin:
        listed = await admin.tokens()
    assert [(t["name"], t["revoked"]) for t in listed] == [("ci", True)]
    assert token not in json.dumps(listed)


async def test_an_expired_token_gets_the_same_401_as_a_wrong_one(
    api: ApiServer, store: Store
) -> None:
    async with local(api) as admin:
        token = (await admin.create_token("brief", expires="1m"))["token"]
    store.db.execute("UPDATE tokens SET expires_at = '2000-01-01T00:00:00+00:00'")
    async with remote(api, token) as client:
        with pytest.raises(RemoteError) as expired:
            await client.apps()
    async with remote(api, "bd_" + "x" * 43) as client:
        with pytest.raises(RemoteError) as wrong:
            await client.apps()
    assert (expired.value.status, expired.value.message) == (401, wrong.value.message)


async def test_deploy_over_tcp_serves_the_release_and_status_shows_it(api: ApiServer) -> None:
    async with local(api) as admin:
        token = (await admin.create_token("deployer"))["token"]
    async with remote(api, token) as client:
        number = await new_app(client, "web", "--label", "tcp")
        outcome = await client.deploy("web", number)
        assert outcome["unit"] == "bindrop-app-web-1.service"
        status, body = await http_get(outcome["port"])
        assert status == 200 and body.startswith("tcp from web release 1")
        shown = await client.status("web")
        assert shown["live"]["state"] == "running" and shown["live"]["release"] == "1"
        assert shown["metrics"]["tasks_current"] >= 1
        assert shown["metrics"]["memory_current"] > 0
        assert shown["app"]["current_release"] == 1
        assert (await client.releases("web"))[0]["created_by"] == "token deployer"
        await client.action("web", "stop")


async def test_an_action_with_wait_0_returns_a_job_that_ends(api: ApiServer) -> None:
    async with local(api) as client:
        number = await new_app(client, "jobby")
        job = await client.deploy("jobby", number, wait=False)
        async with asyncio.timeout(HANG):
            while (state := await client.job(job["job"]))["state"] == "running":
                await asyncio.sleep(0.05)
        assert state["state"] == "succeeded" and state["result"]["release"] == "1"
        await client.action("jobby", "stop")


async def test_logs_show_the_apps_output_and_follow_new_lines(api: ApiServer) -> None:
    async with local(api) as client:
        number = await new_app(client, "talky")
        port = (await client.deploy("talky", number))["port"]
        await http_get(port, "/first")
        async with asyncio.timeout(HANG):
            while not any("/first" in m for m in await messages(client, "talky")):
                await asyncio.sleep(0.1)
        seen: list[str] = []
        async with asyncio.timeout(HANG):
            async for entry in client.logs("talky", lines=5, follow=True):
                seen.append(entry["message"])
                if "/first" in entry["message"]:
                    await http_get(port, "/second")
                if "/second" in entry["message"]:
                    break
        assert any("listening" in m for m in seen) or any("/first" in m for m in seen)
        # Resuming after a cursor gives only what came later.
        entries = [e async for e in client.logs("talky", lines=50)]
        first = next(e for e in entries if "/first" in e["message"])
        later = await messages(client, "talky", cursor=first["cursor"])
        assert later and not any("/first" in m for m in later)
        assert any("/second" in m for m in later)
        await client.action("talky", "stop")


async def messages(client: Client, app: str, **options: str) -> list[str]:
    return [entry["message"] async for entry in client.logs(app, **options)]  # type: ignore[arg-type]


async def test_the_event_stream_delivers_a_stop(api: ApiServer) -> None:
    async with local(api) as client:
        number = await new_app(client, "evented")
        await client.deploy("evented", number)
        stream = client.events(app="evented")
        kinds: list[tuple[str, str]] = []
        async with asyncio.timeout(HANG):
            first = await anext(stream)
            assert first[0] == "state" and first[1]["live"]["state"] == "running"
            stopper = asyncio.ensure_future(_stop_via_new_client(api, "evented"))
            async for kind, data, _ in stream:
                kinds.append((kind, data.get("kind") or data["live"]["state"]))
                if ("event", "app_stopped") in kinds and ("state", "stopped") in kinds:
                    break
            await stopper
        await stream.aclose()


async def _stop_via_new_client(api: ApiServer, app: str) -> None:
    async with local(api) as other:
        await other.action(app, "stop")


async def test_the_event_stream_resumes_after_the_last_event_id(api: ApiServer) -> None:
    async with local(api) as client:
        await client.create_app({"name": "resumed", "hosts": ["resumed.test"]})
        await client.set_env("resumed", {"A": "1"})
        await client.set_env("resumed", {"B": "2"})
        stream = client.events(app="resumed", after=0)
        got = []
        async with asyncio.timeout(HANG):
            async for kind, data, event_id in stream:
                if kind == "event":
                    got.append((event_id, data["kind"]))
                if len(got) == 3:
                    break
        await stream.aclose()
        assert [k for _, k in got] == ["app_created", "env_changed", "env_changed"]
        stream = client.events(app="resumed", after=got[1][0])
        async with asyncio.timeout(HANG):
            async for kind, _, event_id in stream:
                if kind == "event":
                    assert event_id == got[2][0]
                    break
        await stream.aclose()


async def raw_upload(api: ApiServer, headers: str, body: list[bytes]
                     ) -> tuple[int | None, str, int]:
    """POST an upload over a plain socket; return the answer's status (None when the
    server closed before an answer could be read), its body, and how many body bytes the
    server took before it stopped reading."""

    def post() -> tuple[bytes, int]:
        sent = 0
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(HANG)
            sock.connect(str(api.socket_path))
            sock.sendall(f"POST /v1/apps/fat/releases HTTP/1.1\r\nHost: x\r\n{headers}"
                         "\r\n".encode())
            raw = b""
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                for chunk in body:
                    sock.sendall(chunk)
                    sent += len(chunk)
            with contextlib.suppress(ConnectionResetError):
                while data := sock.recv(65536):
                    raw += data
            return raw, sent

    raw, sent = await asyncio.to_thread(post)
    head, _, rest = raw.decode(errors="replace").partition("\r\n\r\n")
    return (int(head.split()[1]) if head else None), rest, sent


def chunked(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


async def test_an_upload_over_the_limit_is_cut_off_with_413_and_leaves_nothing(
    api: ApiServer, tmp_path: Path, store: Store, blobs: BlobStore
) -> None:
    big = tmp_path / "big"
    big.write_bytes(b"#!/bin/sh\n" + b"x" * API_UPLOAD_LIMIT)
    async with local(api) as client:
        await client.create_app({"name": "fat", "hosts": ["fat.test"]})
        with pytest.raises(RemoteError) as refused:
            await client.upload_release("fat", big)
        assert refused.value.status == 413
    # A Content-Length over the limit is refused before the body is sent.
    status, answer, _ = await raw_upload(
        api, f"Content-Length: {API_UPLOAD_LIMIT + 1}\r\nExpect: 100-continue\r\n", [])
    assert status == 413 and "too_large" in answer
    # Without a length, the server counts, answers 413 past the limit, and stops reading.
    body = [chunked(b"#!/bin/sh\n")] + [chunked(b"y" * 65536)] * 1024
    status, answer, sent = await raw_upload(api, "Transfer-Encoding: chunked\r\n", body)
    assert status == 413 and "too_large" in answer
    assert sent < sum(map(len, body)) // 2
    async with local(api) as client:
        assert await client.releases("fat") == []
    assert list(blobs.root.iterdir()) == []
    assert store.list_releases("fat") == []


async def test_content_that_cannot_run_is_refused_and_leaves_nothing(
    api: ApiServer, tmp_path: Path, blobs: BlobStore
) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("just some notes\n" * 100)
    async with local(api) as client:
        await client.create_app({"name": "wrong", "hosts": ["wrong.test"]})
        with pytest.raises(RemoteError) as refused:
            await client.upload_release("wrong", text)
    assert refused.value.status == 400 and "ELF" in refused.value.message
    assert list(blobs.root.iterdir()) == []


async def test_destroy_removes_units_config_blobs_and_with_purge_the_data(
    api: ApiServer, hub: Hub, store: Store, blobs: BlobStore, machine: Machine
) -> None:
    async with local(api) as client:
        number = await new_app(client, "doomed")
        port = (await client.deploy("doomed", number))["port"]
        await http_get(port)  # writes the visit counter into the app's data directory
        data = "/var/lib/private/bindrop/apps/doomed"
        assert machine.exec("test", "-e", f"{data}/visits", check=False).returncode == 0
        gone = await client.destroy_app("doomed", purge_data=True)
        assert gone["stopped"] == ["bindrop-app-doomed-1.service"]
        assert gone["blobs_removed"] == 1 and gone["data_purged"]
        with pytest.raises(RemoteError) as missing:
            await client.app("doomed")
        assert missing.value.status == 404
    assert machine.exec("test", "-e", data, check=False).returncode != 0
    assert list(blobs.root.iterdir()) == []
    assert hub.state.units_of("doomed") == []
    assert [e.kind for e in store.list_events("doomed")][-1] == "app_destroyed"


async def test_env_change_restarts_a_running_app_with_zero_downtime(api: ApiServer) -> None:
    async with local(api) as client:
        number = await new_app(client, "envy")
        first = await client.deploy("envy", number)
        changed = await client.set_env("envy", {"GREETING": "hi"})
        assert changed["restarted"]["action"] == "restart"
        assert changed["restarted"]["stopped"] == [first["unit"]]
        limited = await client.set_limits("envy", {"memory_max": "128M"})
        assert limited["app"]["memory_max"] == 128 * 1024**2
        assert limited["restarted"] is not None
        await client.action("envy", "stop")


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "Bad_Name", "hosts": ["x.test"]}, "app name"),
    ({"name": "ok", "hosts": ["http://x.test"]}, "scheme"),
    ({"name": "ok", "hosts": []}, "hosts"),
    ({"name": "ok", "hosts": ["x.test"], "memory_max": "lots"}, "memory size"),
    ({"name": "ok", "hosts": ["x.test"], "colour": "red"}, "colour"),
])
async def test_bad_input_is_refused_with_400_saying_what_to_change(
    api: ApiServer, body: dict[str, object], field: str
) -> None:
    async with local(api) as client:
        with pytest.raises(RemoteError) as refused:
            await client.create_app(body)
        assert refused.value.status == 400 and field in refused.value.message
        assert await client.apps() == []


async def test_an_app_may_not_claim_the_control_host(api: ApiServer) -> None:
    async with local(api) as client:
        with pytest.raises(RemoteError) as refused:
            await client.create_app({"name": "ctl", "hosts": ["Bindrop.localhost"]})
        assert refused.value.status == 409 and "control API" in refused.value.message
        await client.create_app({"name": "ctl", "hosts": ["ctl.test"]})
        with pytest.raises(RemoteError) as moved:
            await client.update_app("ctl", {"hosts": ["bindrop.localhost/api"]})
        assert moved.value.status == 409
        assert [a["hosts"] for a in await client.apps()] == [["ctl.test"]]
        await client.destroy_app("ctl")


async def test_aiohttp_errors_come_in_the_same_shape(api: ApiServer) -> None:
    async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(
            str(api.socket_path))) as session:
        async with session.get("http://x/v2/nothing") as resp:
            assert resp.status == 404
            assert (await resp.json())["error"]["code"] == "not_found"
        async with session.put("http://x/v1/apps") as resp:
            assert resp.status == 405
            assert (await resp.json())["error"]["code"] == "method_not_allowed"
        huge = io.BytesIO(b"{" + b" " * 2_000_000)
        async with session.post("http://x/v1/apps", data=huge) as resp:
            assert resp.status == 413
            assert (await resp.json())["error"]["code"] == "too_large"


async def test_open_streams_end_promptly_when_the_api_shuts_down(
    hub: Hub, settings: Settings, store: Store, blobs: BlobStore
) -> None:
    add_app(store, blobs, "chatty")
    await hub.call("chatty", Deploy(1))
    async with serve_api(hub, settings) as server:
        client = Client(f"unix:{server.socket_path}")
        events = client.events()
        logs = client.logs("chatty", follow=True)
        await anext(events)
        await anext(logs)
        start = time.monotonic()
    async with asyncio.timeout(SHUTDOWN_TIMEOUT_S):
        assert [e async for e in events] == []
        assert [e async for e in logs] == []
    assert time.monotonic() - start < SHUTDOWN_TIMEOUT_S
    await client.close()
    await hub.call("chatty", Stop())


async def test_a_second_api_on_a_live_socket_is_refused_and_leaves_the_first_serving(
    api: ApiServer, hub: Hub, settings: Settings
) -> None:
    with pytest.raises(Conflict, match="another hub"):
        async with serve_api(hub, settings):
            pass
    async with local(api) as client:
        assert await client.apps() == []


async def test_a_bundle_is_uploaded_with_its_command_and_deployed(
    api: ApiServer, tmp_path: Path
) -> None:
    bundle = tmp_path / "site.tar.gz"
    with tarfile.open(bundle, "w:gz") as tar:
        tar.add(HELLO, arcname="bin/hello")
    async with local(api) as client:
        await client.create_app({"name": "bundled", "hosts": ["bundled.test"]})
        with pytest.raises(RemoteError, match="needs a command"):
            await client.upload_release("bundled", bundle, bundle=True)
        release = await client.upload_release("bundled", bundle, bundle=True,
                                              command=["bin/hello", "--label", "tarball"])
        assert release["kind"] == "bundle" and release["number"] == 1
        outcome = await client.deploy("bundled", 1)
        status, body = await http_get(outcome["port"])
        assert status == 200 and body.startswith("tarball from bundled release 1")
        await client.action("bundled", "stop")


async def test_a_limit_the_app_cannot_run_under_is_undone_and_the_old_unit_keeps_serving(
    api: ApiServer,
) -> None:
    async with local(api) as client:
        number = await new_app(client, "squeezed")
        first = await client.deploy("squeezed", number)
        with pytest.raises(RemoteError) as failed:
            await client.set_limits("squeezed", {"memory_max": "1M", "tasks_max": 1})
        assert failed.value.code == "not_ready" and "undone" in failed.value.message
        shown = await client.status("squeezed")
        assert (shown["app"]["memory_max"], shown["app"]["tasks_max"]) == (None, None)
        assert shown["live"]["unit"] == first["unit"] and shown["live"]["state"] == "running"
        status, _ = await http_get(first["port"])
        assert status == 200
        await client.action("squeezed", "stop")


async def test_tokens_and_env_values_never_reach_the_log(
    api: ApiServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with local(api) as admin:
        await admin.create_app({"name": "quiet", "hosts": ["quiet.test"]})
        token = (await admin.create_token("secretive"))["token"]
    async with remote(api, token) as client:
        await client.set_env("quiet", {"DB_PASSWORD": "hunter2-very-secret"})
        await client.apps()
    async with remote(api, token + "x") as wrong:
        with pytest.raises(RemoteError):
            await wrong.apps()
    assert caplog.records  # the hub and the API did log at debug level meanwhile
    assert token not in caplog.text and "hunter2-very-secret" not in caplog.text


async def test_an_action_runs_to_the_end_when_its_client_goes_away(
    api: ApiServer, hub: Hub
) -> None:
    async with local(api) as client:
        slow = await new_app(client, "steadfast", "--listen-after", "1")
        fast = int((await client.upload_release("steadfast", HELLO))["number"])
        first = asyncio.ensure_future(client.deploy("steadfast", slow))
        await asyncio.sleep(0.2)  # the slow deploy is in flight; the next one queues
        impatient = Client(f"unix:{api.socket_path}")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.3):
                await impatient.deploy("steadfast", fast)
        await impatient.close()
        await first
        view = await wait_for_app(hub, "steadfast", lambda v: v is not None
                                  and v.live_release == str(fast))
        assert view is not None
        await client.action("steadfast", "stop")


async def test_answers_match_the_schemas_in_the_openapi_document(api: ApiServer) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    async with local(api) as client:
        doc = await client.request("GET", "/v1/openapi.json")

        def check(answer: object, path: str, method: str = "get") -> None:
            op = doc["paths"][path][method]
            status = next(code for code in op["responses"] if code.startswith("2"))
            schema = op["responses"][status]["content"]["application/json"]["schema"]
            jsonschema.validate(answer, {**schema, "components": doc["components"]})

        check(await client.create_app({"name": "typed", "hosts": ["typed.test"]}),
              "/v1/apps", "post")
        release = await client.upload_release("typed", HELLO)
        check(release, "/v1/apps/{app}/releases", "post")
        check(await client.deploy("typed", release["number"]), "/v1/apps/{app}/deploy", "post")
        check(await client.deploy("typed", release["number"], wait=False),
              "/v1/apps/{app}/deploy", "post")
        check(await client.request("GET", "/v1/apps"), "/v1/apps")
        check(await client.app("typed"), "/v1/apps/{app}")
        check(await client.request("GET", "/v1/apps/typed/releases"), "/v1/apps/{app}/releases")
        check(await client.set_env("typed", {"A": "1"}), "/v1/apps/{app}/env", "put")
        check(await client.create_token("typed"), "/v1/tokens", "post")
        check(await client.request("GET", "/v1/tokens"), "/v1/tokens")
        check(await client.revoke_token("typed"), "/v1/tokens/{name}", "delete")
        check(await client.action("typed", "stop"), "/v1/apps/{app}/stop", "post")
        # And a wrong one is caught: the check can fail.
        with pytest.raises(jsonschema.ValidationError):
            check({"apps": [{"name": "x"}]}, "/v1/apps")


async def test_local_only_routes_are_served_on_the_unix_socket_and_not_over_tcp(
    hub: Hub, settings: Settings
) -> None:
    async def extra(request: web.Request) -> web.Response:
        return web.json_response({"local": True})

    with_tcp = dataclasses.replace(settings, api_port=0)
    async with serve_api(hub, with_tcp,
                         local_only=lambda app: app.router.add_get("/v1/extra", extra)) as srv:
        async with local(srv) as client:
            assert await client.request("GET", "/v1/extra") == {"local": True}
            token = (await client.create_token("outsider"))["token"]
        async with remote(srv, token) as outsider:
            with pytest.raises(RemoteError) as missing:
                await outsider.request("GET", "/v1/extra")
    assert missing.value.status == 404
