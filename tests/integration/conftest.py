"""Call the real handlers with API Gateway events built from ``events/``, routed by template.yaml.

``api.request("PATCH", "/v1/contacts/con_…", org_id=…, json={...})`` finds the function
whose ``HttpApi`` event matches the method and path in template.yaml, fills the sample
event in ``events/http_api_proxy.json`` and invokes that function's ``app.handler``
in-process against DynamoDB Local.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from devstack.routes import template_routes

REPO = Path(__file__).resolve().parents[2]
SAMPLE_EVENT = json.loads((REPO / "events" / "http_api_proxy.json").read_text())


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: Any


class Api:
    """In-process API: route like API Gateway, invoke the function's handler, parse JSON."""

    def __init__(self) -> None:
        self.repo = REPO
        self.routes = template_routes()
        self._modules: dict[Path, ModuleType] = {}

    def handler_module(self, code_uri: Path) -> ModuleType:
        if code_uri not in self._modules:
            spec = importlib.util.spec_from_file_location(f"fn_{code_uri.name}",
                                                          code_uri / "app.py")
            assert spec and spec.loader
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            self._modules[code_uri] = module
        return self._modules[code_uri]

    def request(self, method: str, path: str, *, org_id: str, json_body: Any = None,
                raw_body: str | None = None, query: dict[str, str] | None = None,
                headers: dict[str, str] | None = None) -> Response:
        for route in self.routes:
            matched = route.pattern.match(path)
            if route.method == method and matched:
                break
        else:
            raise AssertionError(f"template.yaml has no route for {method} {path}")
        event = copy.deepcopy(SAMPLE_EVENT)
        event["routeKey"] = event["requestContext"]["routeKey"] = f"{method} {route.path}"
        event["rawPath"] = event["requestContext"]["http"]["path"] = path
        event["requestContext"]["http"]["method"] = method
        event["requestContext"]["requestId"] = str(uuid.uuid4())
        event["requestContext"]["authorizer"]["lambda"]["org_id"] = org_id
        event["pathParameters"] = matched.groupdict() or None
        event["queryStringParameters"] = query or None
        event["headers"] |= {k.lower(): v for k, v in (headers or {}).items()}
        if json_body is not None:
            raw_body = json.dumps(json_body)
        event["body"] = raw_body
        result = self.handler_module(route.code_uri).handler(event, _Context())
        body, headers = result.get("body"), result.get("headers", {})
        if body and "json" in headers.get("Content-Type", ""):
            body = json.loads(body)
        return Response(result["statusCode"], headers, body or None)


class _Context:
    function_name = "test"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test"
    aws_request_id = "test-request"


@pytest.fixture(scope="session")
def api(dynamodb: str) -> Api:
    """The API in-process against the session's DynamoDB Local."""
    return Api()
