"""The committed OpenAPI document is what the models and template.yaml generate."""

from __future__ import annotations

import json

from openapi_spec_validator import validate

from devstack.openapi import OPENAPI_PATH, render
from devstack.routes import template_routes


def test_committed_openapi_is_current():
    assert OPENAPI_PATH.exists(), "run `make openapi`"
    assert OPENAPI_PATH.read_text() == render(), "openapi.json is stale: run `make openapi`"


def test_every_route_of_the_template_is_documented():
    document = json.loads(render())
    assert document["openapi"].startswith("3.1")
    for route in template_routes():
        operation = document["paths"][route.path][route.method.lower()]
        assert "401" in operation["responses"] and operation["summary"]


def test_document_is_valid_openapi_3_1():
    validate(json.loads(render()))
    document = json.loads(render())
    assert set(document["webhooks"]) >= {"contact.created", "audience.contact_added"}
