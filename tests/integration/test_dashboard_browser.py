"""The dashboard in a real browser (Debian's chromium, headless) against a real machine.

The machine is a server as `bindrop install` leaves it: hub, proxy, and the dashboard as a
system app at dashboard.localhost. The browser logs in with a token, sees an app, stops it
from the page and sees the state change with no reload, rolls back a release and reads a log
line. Screenshots of the main pages go to .test-artifacts/dashboard/ (not committed).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bindrop.client.client import Client
from bindrop.machine import Machine

from .hubkit import HANG, HELLO
from .serverkit import installed_machine

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / ".test-artifacts" / "dashboard"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
WAIT_MS = 20_000

playwright_api = pytest.importorskip("playwright.async_api")


@dataclass(frozen=True)
class Served:
    machine: Machine
    url: str
    admin: str
    reader: str


@pytest.fixture(scope="module")
def server_machine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Machine]:
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium (apt-get install chromium)")
    with installed_machine(tmp_path_factory, "dash") as m:
        yield m


@pytest.fixture(scope="module")
async def served(server_machine: Machine) -> Served:
    """Tokens, and app hello with two releases, the second live."""
    async with Client(f"unix:{server_machine.control_socket}") as client:
        admin = (await client.create_token("browser"))["token"]
        reader = (await client.create_token("watcher", read_only=True))["token"]
        await client.create_app({"name": "hello", "hosts": ["hello.localhost"]})
        for label in ("one", "two"):
            release = await client.upload_release("hello", HELLO, command=["--label", label])
            await client.deploy("hello", release["number"])
    env = dict(line.removeprefix("export ").split("=", 1)
               for line in server_machine.env_lines())
    url = env["BINDROP_DASHBOARD_URL"]
    await _until_every_proxy_serves(url)
    return Served(server_machine, url, admin, reader)


async def _until_every_proxy_serves(url: str) -> None:
    """Wait until the dashboard answers through the proxy several times in a row: each proxy
    worker takes the hub's routes when it connects, and may still be on its snapshot."""
    port = int(url.rsplit(":", 1)[1])
    host = url.removeprefix("http://")
    in_a_row = 0
    async with asyncio.timeout(HANG):
        while in_a_row < 10:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n"
                         "Connection: close\r\n\r\n".encode())
            answer = await reader.read()
            writer.close()
            in_a_row = in_a_row + 1 if answer.startswith(b"HTTP/1.1 200") else 0
            if not in_a_row:
                await asyncio.sleep(0.1)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    async with playwright_api.async_playwright() as p:
        b = await p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


@pytest.fixture(scope="module")
def artifacts() -> Path:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    return ARTIFACTS


async def _login(browser: Any, served: Served, token: str, profile: Path) -> Any:
    """A fresh browser context (its own cookies), logged in; returns its page."""
    context = await browser.new_context(viewport={"width": 1100, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(WAIT_MS)
    await page.goto(served.url + "/")
    # No session: everything leads to the login.
    assert page.url.endswith("/login"), await page.content()
    await page.screenshot(path=str(profile / "login.png"))
    await page.fill("#token", token)
    await page.click("button[type=submit]")
    await page.wait_for_url(served.url + "/")
    return page


def _row(page: Any, app: str) -> Any:
    return page.locator(f'[data-app="{app}"]')


async def test_a_person_logs_in_stops_an_app_rolls_back_and_reads_its_log(
    served: Served, browser: Any, artifacts: Path
) -> None:
    page = await _login(browser, served, served.admin, artifacts)
    expect = playwright_api.expect
    # Apps: hello runs its second release; hostnames are links through the same proxy.
    await expect(_row(page, "hello").locator('[data-field="state"]')).to_have_text("running")
    await expect(_row(page, "hello").locator('[data-field="release"]')).to_have_text("2")
    link = await page.get_by_role("link", name="hello.localhost").get_attribute("href")
    assert link == served.url.replace("dashboard.localhost", "hello.localhost") + "/"
    assert await page.locator("text=bindrop-dashboard").count() == 0  # system apps hidden
    await page.screenshot(path=str(artifacts / "apps.png"), full_page=True)

    # App: the log tail shows what the app printed; stop changes the state with no reload.
    await page.click("a[href='/apps/hello']")
    await page.wait_for_url("**/apps/hello")
    await expect(page.locator("#log")).to_contain_text("hello: listening on 127.0.0.1:")
    await page.evaluate("window.__same_page = true")
    await page.click("button[value=stop]")
    state = page.locator('h1 [data-field="state"]')
    await expect(state).to_have_text("stopped")
    await expect(page.locator("#action-status")).to_contain_text("hello is stopped")
    assert await page.evaluate("window.__same_page === true")  # no reload happened
    await page.screenshot(path=str(artifacts / "app-stopped.png"), full_page=True)

    # Roll back to release 1 (confirming the dialog): it serves again.
    page.once("dialog", lambda dialog: dialog.accept())
    await page.click("text=Roll back to 1")
    await expect(page.locator(".flash.ok")).to_contain_text("release 1 of hello is live")
    await expect(state).to_have_text("running")
    await expect(page.locator('dd[data-field="release"]')).to_have_text("1")
    await expect(page.locator("tr[data-release='1'] .release-live")).to_have_text("live")
    await expect(page.locator("#log")).to_contain_text("[1] hello: listening")
    await page.screenshot(path=str(artifacts / "app.png"), full_page=True)

    await page.click("text=Server")
    await expect(page.locator("body")).to_contain_text("bindrop.service")
    await expect(page.locator("#events")).to_contain_text("rollback_succeeded")
    await page.screenshot(path=str(artifacts / "server.png"), full_page=True)

    await page.click("nav >> text=Tokens")
    await expect(page.locator("tr[data-token=watcher]")).to_contain_text("read-only")
    await page.screenshot(path=str(artifacts / "tokens.png"), full_page=True)
    await page.context.close()


async def test_a_read_only_token_gets_a_dashboard_without_buttons(
    served: Served, browser: Any, artifacts: Path, tmp_path: Path
) -> None:
    page = await _login(browser, served, served.reader, tmp_path)
    await page.goto(served.url + "/apps/hello")
    await playwright_api.expect(page.locator("#log")).to_contain_text("hello:")
    assert await page.locator("button[value=stop]").count() == 0
    assert await page.locator("text=Roll back").count() == 0
    await page.goto(served.url + "/backups")
    await playwright_api.expect(page.locator("h1")).to_have_text("Backups")
    assert await page.locator("#backups button, button[value=backup]").count() == 0
    await page.screenshot(path=str(artifacts / "app-read-only.png"), full_page=True)
    await page.set_viewport_size({"width": 390, "height": 844})  # a phone
    await page.goto(served.url + "/")
    await page.screenshot(path=str(artifacts / "apps-phone.png"), full_page=True)
    await page.context.close()


async def test_a_person_backs_up_sees_it_appear_restores_an_app_and_reads_the_disk(
    served: Served, browser: Any, artifacts: Path
) -> None:
    page = await _login(browser, served, served.admin, artifacts)
    expect = playwright_api.expect
    await page.click("nav >> text=Backups")
    await page.wait_for_url("**/backups")
    rows = page.locator("tr[data-backup]")
    before = await rows.count()
    await page.evaluate("window.__same_page = true")
    await page.click("button[value=backup]")
    await expect(page.locator("#action-status")).to_contain_text("backup started")
    # The new backup appears when the hub says it was made, with no reload.
    await expect(rows).to_have_count(before + 1, timeout=60_000)
    newest = rows.first
    await expect(newest).to_contain_text("hello")
    await expect(newest).to_contain_text("local")
    assert await page.evaluate("window.__same_page === true")
    backup_id = await newest.get_attribute("data-backup")
    await page.screenshot(path=str(artifacts / "backups.png"), full_page=True)

    asked: list[str] = []

    async def accept(dialog: Any) -> None:
        asked.append(dialog.message)
        await dialog.accept()

    page.once("dialog", accept)
    await newest.locator("button[data-restore=hello]").click()
    await expect(page.locator(".flash.ok")).to_contain_text("restore of hello started")
    assert asked and "hello" in asked[0] and str(backup_id) in asked[0]
    await expect(page.locator("#care-runs")).to_contain_text("restore hello succeeded",
                                                             timeout=60_000)
    await page.goto(served.url + "/apps/hello")
    await expect(page.locator('h1 [data-field="state"]')).to_have_text("running")

    await page.click("nav >> text=Disk")
    await page.wait_for_url("**/disk")
    await expect(page.locator("tr[data-mount]").first).to_contain_text("%")
    await expect(page.locator("tr[data-part=blobs]")).to_be_visible()
    await expect(page.locator("tr[data-part=app-hello]")).to_be_visible()
    await page.screenshot(path=str(artifacts / "disk.png"), full_page=True)
    await page.context.close()


async def _visit(served: Served, host: str, times: int) -> None:
    port = int(served.url.rsplit(":", 1)[1])
    for _ in range(times):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        await reader.read()
        writer.close()


async def _no_overflow(page: Any) -> None:
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= await page.evaluate("window.innerWidth"), "the page scrolls sideways"


async def test_the_app_page_graphs_traffic_live_and_fits_a_phone(
    served: Served, browser: Any, artifacts: Path, tmp_path: Path
) -> None:
    expect = playwright_api.expect
    page = await _login(browser, served, served.admin, tmp_path)
    await _visit(served, "hello.localhost", 20)
    await page.goto(served.url + "/apps/hello")
    requests = page.locator('svg.chart[aria-label="Requests"]')
    await expect(requests).to_have_count(1)
    for title in ("Errors (5xx and unanswered)", "Latency p50 / p95", "Memory",
                  "CPU (share of one core)"):
        await expect(page.locator(f'svg.chart[aria-label="{title}"]')).to_have_count(1)
    # The hub closes a point every 10 s and the page fetches its graphs again as often.
    await expect(requests).not_to_have_attribute("data-points", "0", timeout=60_000)
    drawn = int(await requests.get_attribute("data-points") or 0)
    await _visit(served, "hello.localhost", 5)
    await expect(page.locator(f'svg.chart[aria-label="Requests"]:not([data-points="{drawn}"])'
                              )).to_have_count(1, timeout=60_000)  # it gained points, live
    assert int(await requests.get_attribute("data-points") or 0) > drawn
    assert await page.locator('svg.chart[aria-label="Requests"] polyline, '
                              'svg.chart[aria-label="Requests"] circle').count() > 0
    # Deploys and rollbacks are marked on the time axis.
    assert await page.locator("svg.chart .mark-deploy, svg.chart .mark-rollback").count() > 0
    await page.click(".ranges >> text=1d")
    await expect(page.locator(".ranges a[aria-current]")).to_have_text("1d")
    await expect(requests).not_to_have_attribute("data-points", "0")
    await page.click(".ranges >> text=1h")

    for name, size in (("desktop", {"width": 1280, "height": 900}),
                       ("phone", {"width": 390, "height": 844})):
        await page.set_viewport_size(size)
        await page.wait_for_timeout(200)
        await _no_overflow(page)
        box = await requests.bounding_box()
        assert box is not None and 0 < box["width"] <= size["width"]
        shot = artifacts / f"app-graphs-{name}.png"
        await page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
    # The apps page draws a trend line per app, and fits a phone too.
    await page.goto(served.url + "/")
    await expect(_row(page, "hello").locator("svg.spark")).to_have_count(1)
    await _no_overflow(page)
    await page.context.close()


async def test_a_person_creates_an_app_uploads_deploys_rolls_back_and_schedules_from_the_page(
    served: Served, browser: Any, artifacts: Path, tmp_path: Path
) -> None:
    expect = playwright_api.expect
    page = await _login(browser, served, served.admin, tmp_path)
    await page.click("summary >> text=New app")
    await page.fill("#new-app [name=name]", "fresh")
    await page.fill("#new-app [name=hosts]", "fresh.localhost")
    await page.fill("#new-app [name=memory_max]", "256M")
    await page.click("#new-app button[type=submit]")
    await page.wait_for_url("**/apps/fresh")
    await expect(page.locator(".flash.ok")).to_contain_text("app fresh created")

    async def upload(label: str, number: int) -> None:
        await page.set_input_files("#upload [name=file]", str(HELLO))
        await page.fill("#upload [name=command]", f"--label {label}")
        await page.click("#upload button[type=submit]")
        await expect(page.locator("#upload-progress")).to_be_visible()  # the script sends it
        await expect(page.locator("#upload-status")).to_contain_text(
            f"release {number} of fresh is live", timeout=60_000)
        await expect(page.locator(f"tr[data-release='{number}'] .release-live")
                     ).to_have_text("live")

    await upload("first", 1)
    await _visit(served, "fresh.localhost", 10)
    requests = page.locator('svg.chart[aria-label="Requests"]')
    await expect(requests).not_to_have_attribute("data-points", "0", timeout=60_000)
    await upload("second", 2)

    page.once("dialog", lambda dialog: dialog.accept())
    await page.click("text=Roll back to 1")
    await expect(page.locator(".flash.ok")).to_contain_text("release 1 of fresh is live")

    await page.fill("#cron-add [name=schedule]", "daily")
    await page.fill("#cron-add [name=args]", "--label nightly")
    await page.click("#cron-add button[type=submit]")
    await expect(page.locator("tr[data-job=job1]")).to_contain_text("--label nightly")
    page.once("dialog", lambda dialog: dialog.accept())
    await page.click("tr[data-job=job1] button")
    await expect(page.locator("tr[data-job=job1]")).to_have_count(0)

    await page.fill("#settings [name=hosts]", "fresh.localhost fresh2.localhost")
    await page.click("#settings button[type=submit]")
    await expect(page.locator(".flash.ok")).to_contain_text("settings saved")
    await expect(page.locator(".facts")).to_contain_text("fresh2.localhost")
    await page.screenshot(path=str(artifacts / "app-managed.png"), full_page=True)

    # The apps page adds and removes rows as apps come and go elsewhere (no reload).
    await page.goto(served.url + "/")
    await page.evaluate("window.__same_page = true")
    await expect(page.locator("body[data-synced]")).to_have_count(1)  # following the hub
    async with Client(f"unix:{served.machine.control_socket}") as client:
        await client.create_app({"name": "late", "hosts": ["late.localhost"]})
        await expect(_row(page, "late")).to_have_count(1)
        await client.destroy_app("late")
    await expect(_row(page, "late")).to_have_count(0)
    assert await page.evaluate("window.__same_page === true")
    await page.context.close()

    # A read-only token sees the same pages without a single write control.
    reader = await _login(browser, served, served.reader, tmp_path)
    assert await reader.locator("#new-app").count() == 0
    await reader.goto(served.url + "/apps/fresh")
    await expect(reader.locator('svg.chart[aria-label="Requests"]')).to_have_count(1)
    for control in ("#upload", "#settings", "#cron-add", "form[action$='/deploy']",
                    "form[action$='/rollback']", "button[value=stop]"):
        assert await reader.locator(control).count() == 0, control
    await reader.context.close()
