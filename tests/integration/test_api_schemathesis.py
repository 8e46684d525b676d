"""schemathesis over the API's own OpenAPI document: generated requests, valid and invalid,
against the TCP listener with an admin token. No answer may be a 5xx."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bindrop.api import ApiServer
from bindrop.client.client import Client

# A test dependency (pyproject's [test] extra); the targeted walk in test_api_fuzz.py runs
# without it.
schemathesis = pytest.importorskip("schemathesis")
requests = pytest.importorskip("requests")

pytestmark = pytest.mark.integration

# Per operation and mode. Kept small: the suite stays fast, and test_api_fuzz.py covers the
# known-bad values (huge ids, bad UTF-8, wrong types) deterministically.
EXAMPLES = 3


def fuzz(doc: dict[str, Any], base_url: str, token: str) -> list[str]:
    """Run every operation with generated input; return what answered 5xx. Blocking."""
    from hypothesis import HealthCheck, given, settings
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_dict(doc)
    failures: list[str] = []
    session = requests.Session()
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.NEGATIVE, GenerationMode.POSITIVE):

            @settings(max_examples=EXAMPLES, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck), derandomize=True)
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: Any) -> None:
                kwargs = case.as_transport_kwargs(
                    base_url=base_url, headers={"Authorization": f"Bearer {token}"})
                # stream: a valid logs or events request would never end on its own.
                response = session.request(**kwargs, stream=True, timeout=10)
                response.close()
                if response.status_code >= 500:
                    failures.append(f"{case.method} {case.formatted_path} {case.query} "
                                    f"{case.body!r:.100}: {response.status_code}")

            run()
    session.close()
    return failures


async def test_schemathesis_finds_no_5xx(api: ApiServer) -> None:
    async with Client(f"unix:{api.socket_path}") as admin:
        token = (await admin.create_token("fuzzer"))["token"]
        doc = await admin.request("GET", "/v1/openapi.json")
        await admin.create_app({"name": "fz", "hosts": ["fz.test"]})
    failures = await asyncio.to_thread(fuzz, doc, f"http://127.0.0.1:{api.tcp_port}", token)
    assert failures == []
