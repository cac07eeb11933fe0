"""GET /docs → a Redoc page for the API; GET /openapi.json → the OpenAPI document.

Both routes are public (``Auth: Authorizer: NONE``): the document describes the API, it
grants nothing. ``openapi.json`` next to this file is a copy of the repository's, written
by ``make openapi`` (a test fails when they differ). The page loads Redoc from its CDN.
"""

from pathlib import Path
from typing import Any

OPENAPI = (Path(__file__).resolve().parent / "openapi.json").read_text(encoding="utf-8")
REDOC = "https://cdn.jsdelivr.net/npm/redoc@2.5.0/bundles/redoc.standalone.js"
PAGE = f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Contacts API reference</title>
</head>
<body>
  <redoc spec-url="openapi.json"></redoc>
  <noscript>The reference needs JavaScript; the document itself is
    <a href="openapi.json">openapi.json</a>.</noscript>
  <script src="{REDOC}"></script>
</body>
</html>
"""
CACHE = "public, max-age=300"


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The OpenAPI document for ``…/openapi.json``, the HTML page for anything else; a
    path with a trailing slash (``/docs/``, where the page's relative ``openapi.json``
    would name ``/docs/openapi.json``) is sent to the path without it (308)."""
    path = str(event.get("rawPath", ""))
    if path.endswith("/") and path.strip("/"):
        return {"statusCode": 308, "headers": {"Location": path.rstrip("/"),
                                               "Cache-Control": CACHE}}
    if path.endswith("/openapi.json"):
        return {"statusCode": 200, "body": OPENAPI,
                "headers": {"Content-Type": "application/json", "Cache-Control": CACHE}}
    return {"statusCode": 200, "body": PAGE,
            "headers": {"Content-Type": "text/html; charset=utf-8", "Cache-Control": CACHE}}
