"""The proxy's own pages: HTML by default, JSON when the client prefers it."""

from __future__ import annotations

import json

import pytest

from bindrop.proxy.pages import Pages, wants_json


@pytest.mark.parametrize(("accept", "json_wanted"), [
    ("", False),
    ("*/*", False),
    ("application/json", True),
    ("application/problem+json", True),
    ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", False),
    ("application/json, text/html", True),
    ("text/html, application/json", False),
    ("text/html;q=0.5, application/json", True),
    ("application/json;q=0", False),
    ("application/json;q=bad", False),
])
def test_json_is_chosen_only_when_preferred_to_html(accept: str, json_wanted: bool) -> None:
    assert wants_json(accept) is json_wanted


def test_an_html_page_escapes_what_it_shows() -> None:
    page = Pages().render(503, "<b>back soon</b>", app="blog", request_id="r1")
    text = page.body.decode()
    assert page.content_type.startswith("text/html")
    assert "&lt;b&gt;back soon&lt;/b&gt;" in text and "<b>back" not in text
    assert "503" in text and "blog" in text and "r1" in text


def test_a_json_answer_has_the_shape_of_every_bindrop_error() -> None:
    page = Pages().render(404, "nothing here", accept="application/json", request_id="r1")
    assert json.loads(page.body) == {"error": {"code": "not_found", "message": "nothing here"},
                                     "request_id": "r1"}
    assert page.status == 404 and page.content_type == "application/json"
