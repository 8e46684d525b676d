"""The dashboard's care pages as a forger would try them: a logged-in admin's browser sent a
form from another site (no CSRF token, or another session's), or a read-only session."""

from __future__ import annotations

import pytest

from bindrop.hub.hub import Hub
from bindrop.store import AppConfig, Store

from .test_dashboard_pages import CSRF, Dash, dashboard, log_in, token  # noqa: F401

pytestmark = pytest.mark.integration

BACKUP_ID = "20261128T081500.123Z-app-shop"
CARE_FORMS = [("/backups/run", {}), (f"/backups/{BACKUP_ID}/verify", {}),
              ("/apps/shop/restore", {"from": BACKUP_ID})]


@pytest.mark.parametrize(("path", "form"), CARE_FORMS, ids=[p for p, _ in CARE_FORMS])
async def test_a_care_form_without_this_session_s_csrf_token_is_refused_and_starts_nothing(
        dashboard: Dash, hub: Hub, store: Store, path: str, form: dict[str, str]) -> None:  # noqa: F811
    store.create_app(AppConfig("shop", ("shop.test",)))
    csrf = await log_in(dashboard, await token(hub, "dash-admin"))
    for forged in ({}, {"csrf": ""}, {"csrf": csrf[:-1] + ("A" if csrf[-1] != "A" else "B")}):
        answer = await dashboard.post(path, data={**form, **forged}, allow_redirects=False)
        assert answer.status == 403, (forged, await answer.text())
    assert hub.care_runs.list() == []
    page = await dashboard.get("/backups")
    forms = (await page.text()).count("<form")
    assert len(CSRF.findall(await page.text())) >= forms  # every form carries the token


async def test_a_read_only_session_cannot_start_a_backup_or_restore(
        dashboard: Dash, hub: Hub, store: Store) -> None:  # noqa: F811
    store.create_app(AppConfig("shop", ("shop.test",)))
    csrf = await log_in(dashboard, await token(hub, "dash-viewer", "read-only"))
    for path, form in CARE_FORMS:
        answer = await dashboard.post(path, data={**form, "csrf": csrf}, allow_redirects=False)
        assert answer.status in (303, 403), await answer.text()
    assert hub.care_runs.list() == []
