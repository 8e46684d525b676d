"""The proxy's own answers: 404, 413, 502, 503, 504 as a small HTML page or JSON.

One template (``templates/error.html``), rendered with autoescaping; JSON has the shape of
every bindrop error: ``{"error": {"code", "message"}, "request_id"}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import jinja2

CODES = {404: "not_found", 413: "too_large", 502: "bad_gateway", 503: "unavailable",
         504: "gateway_timeout"}
TITLES = {404: "Not found", 413: "Request too large", 502: "Bad gateway",
          503: "Unavailable", 504: "Gateway timeout"}


@dataclass(frozen=True)
class Page:
    status: int
    content_type: str
    body: bytes


class Pages:
    """Renders error pages. Build one per proxy: the template is compiled once."""

    def __init__(self) -> None:
        env = jinja2.Environment(loader=jinja2.PackageLoader("bindrop.proxy", "templates"),
                                 autoescape=True)
        self._template = env.get_template("error.html")

    def render(self, status: int, message: str, *, accept: str = "", app: str | None = None,
               request_id: str = "") -> Page:
        if wants_json(accept):
            body = {"error": {"code": CODES.get(status, "error"), "message": message},
                    "request_id": request_id}
            return Page(status, "application/json", json.dumps(body).encode())
        html = self._template.render(status=status, title=TITLES.get(status, "Error"),
                                     message=message, app=app, request_id=request_id)
        return Page(status, "text/html; charset=utf-8", html.encode())


def wants_json(accept: str) -> bool:
    """True when ``Accept`` prefers JSON to HTML (by q-value; JSON wins a tie only if listed
    first). Pure."""
    best: dict[str, tuple[float, int]] = {}
    for position, part in enumerate(accept.split(",")):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        media = media.lower()
        kind = ("json" if media == "application/json" or media.endswith("+json") else
                "html" if media in ("text/html", "application/xhtml+xml") else None)
        if kind and q > 0 and (kind not in best or q > best[kind][0]):
            best[kind] = (q, position)
    if "json" not in best:
        return False
    if "html" not in best:
        return True
    (jq, jpos), (hq, hpos) = best["json"], best["html"]
    return jq > hq or (jq == hq and jpos < hpos)
