"""The committed OpenAPI document is what the models and template.yaml generate, and it
describes what the server accepts and answers (ids, cursors, ETags, problem statuses)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from openapi_spec_validator import validate
from pydantic import ValidationError

from contacts_core.audiences.models import AudiencePatch
from contacts_core.contacts.requests import ContactPatch
from contacts_core.http.cursor import encode_cursor
from contacts_core.http.problems import from_validation_error
from contacts_core.ids import new_contact_id
from contacts_core.keys import KeyRing
from contacts_core.webhooks.models import EndpointPatch
from devstack.openapi import (
    DOCS_COPY_PATH,
    OPENAPI_PATH,
    OPERATIONS,
    PATH_REQUESTS,
    PUBLIC_ROUTES,
    REQUEST_EXAMPLES,
    render,
)
from devstack.routes import REPO_ROOT, template_routes

LAYER = REPO_ROOT / "layers" / "contacts_core"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return json.loads(render())


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, op) for path, item in document["paths"].items()
            for method, op in item.items()]


def parameter(op: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in op["parameters"] if p["name"] == name)


def test_committed_openapi_is_current():
    assert OPENAPI_PATH.exists(), "run `make openapi`"
    assert OPENAPI_PATH.read_text() == render(), "openapi.json is stale: run `make openapi`"


def test_docs_function_packages_the_committed_document():
    # Given the document the generator writes, When DocsFunction is packaged,
    # Then its copy is the same bytes (GET /openapi.json serves what is committed)
    assert DOCS_COPY_PATH.read_text() == OPENAPI_PATH.read_text(), "run `make openapi`"


def test_generator_is_not_shipped_in_the_lambda_layer():
    assert not list(LAYER.rglob("openapi*.py"))


def test_every_route_of_the_template_is_documented(document):
    assert document["openapi"].startswith("3.1")
    for route in template_routes():
        operation = document["paths"][route.path][route.method.lower()]
        assert operation["summary"]
        if route.path in PUBLIC_ROUTES:  # no authorizer: nothing to refuse
            assert operation["security"] == [] and "401" not in operation["responses"]
        else:
            assert "401" in operation["responses"]
    assert set(PUBLIC_ROUTES) == {"/docs", "/openapi.json"}


def test_document_is_valid_openapi_3_1(document):
    validate(document)
    assert set(document["webhooks"]) >= {"contact.created", "audience.contact_added"}


def test_every_operation_documents_500_and_429_problems(document):
    for method, path, op in operations(document):
        responses = op["responses"]
        assert "application/problem+json" in responses["500"]["content"], (method, path)
        assert "Retry-After" in responses["429"]["headers"], (method, path)


def test_problem_statuses_use_the_problem_media_type_and_name_their_codes(document):
    for _, _, op in operations(document):
        for status, answer in op["responses"].items():
            if status not in ("401", "403") and int(status) >= 400:
                schema = answer["content"]["application/problem+json"]["schema"]
                problem, narrowed = schema["allOf"]
                assert problem == {"$ref": "#/components/schemas/Problem"}
                assert narrowed["properties"]["status"] == {"const": int(status)}
                assert narrowed["properties"]["code"]["enum"]


def test_if_match_is_documented_on_contact_patch_and_delete(document):
    pattern = None
    for method in ("patch", "delete"):
        op = document["paths"]["/v1/contacts/{id}"][method]
        pattern = parameter(op, "If-Match")["schema"]["pattern"]
        assert {"400", "412"} <= set(op["responses"])
    assert pattern is not None
    for accepted in ('"3"', 'W/"3"', "3", "*", '"0"', "0"):
        assert re.search(pattern, accepted), accepted
    for refused in ('"x"', '"3', "3" * 19, "", '"03"', "00"):
        assert not re.search(pattern, refused), refused


def test_contact_answers_carry_the_etag(document):
    for method, path in (("get", "/v1/contacts/{id}"), ("post", "/v1/contacts"),
                         ("patch", "/v1/contacts/{id}"), ("post", "/v1/contacts/upsert")):
        responses = document["paths"][path][method]["responses"]
        for status in ("200", "201"):
            if status in responses:
                assert responses[status]["headers"]["ETag"]["required"] is True


def test_concurrent_modification_409_carries_retry_after(document):
    op = document["paths"]["/v1/contacts/{id}"]["patch"]
    conflict = op["responses"]["409"]
    assert "concurrent_modification" in conflict["description"]
    codes = conflict["content"]["application/problem+json"]["schema"]["allOf"][1]
    assert set(codes["properties"]["code"]["enum"]) == {
        "identity_conflict", "concurrent_modification", "idempotency_in_progress"}
    assert "Retry-After" in conflict["headers"]


def test_every_write_takes_an_idempotency_key_and_every_answer_advertises_the_rate(document):
    for path, methods in document["paths"].items():
        for method, op in methods.items():
            if op.get("security") == []:
                continue  # the public /docs and /openapi.json: no org, no limit
            names = {p["name"] for p in op["parameters"]}
            ok = next(v for k, v in op["responses"].items() if k.startswith("2"))
            assert {"RateLimit", "RateLimit-Policy"} <= set(ok["headers"]), (method, path)
            assert {"Retry-After", "RateLimit"} <= set(op["responses"]["429"]["headers"])
            if method in ("post", "patch", "delete"):
                assert "Idempotency-Key" in names and "Idempotent-Replayed" in ok["headers"]
                # a malformed key is a 400 naming it, on every write
                assert {"400", "409", "422"} <= set(op["responses"]), (method, path)
            else:
                assert "Idempotency-Key" not in names, (method, path)


def test_cursor_parameter_matches_cursors_the_server_issues(document):
    ring = KeyRing.from_secret({"current": "s" * 64})
    issued = encode_cursor("org_1", {"sort": "name"}, {"pk": "a", "sk": "b"}, ring)
    for path in ("/v1/contacts", "/v1/audiences", "/v1/audiences/{id}/contacts",
                 "/v1/contacts/export"):
        schema = parameter(document["paths"][path]["get"], "cursor")["schema"]
        assert re.search(schema["pattern"], issued) and len(issued) <= schema["maxLength"]
        assert not re.search(schema["pattern"], "not-a-cursor")


def test_contact_id_parameter_matches_ids_the_server_issues(document):
    contact_id, _ = new_contact_id()
    schema = parameter(document["paths"]["/v1/contacts/{id}"]["get"], "id")["schema"]
    assert re.search(schema["pattern"], contact_id)
    assert not re.search(schema["pattern"], contact_id + "X")


def test_optional_query_parameters_have_no_null_branch(document):
    for _, _, op in operations(document):
        for param in op["parameters"]:
            assert "anyOf" not in param["schema"] and "title" not in param["schema"], param


def test_request_examples_are_accepted_by_their_models():
    models = {m.__name__: m for op in OPERATIONS.values() if op.request for m in [op.request]}
    models |= {m.__name__: m for m in PATH_REQUESTS.values()}
    assert set(REQUEST_EXAMPLES) == set(models)
    for name, example in REQUEST_EXAMPLES.items():
        models[name].model_validate(example)


def _nullable(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "null" or any(b.get("type") == "null"
                                               for b in schema.get("anyOf", []))


@pytest.mark.parametrize("model_name", ["ContactPatch", "EndpointPatch", "AudiencePatch"])
def test_a_patch_field_takes_null_exactly_when_the_document_says_so(document, model_name):
    # Given a PATCH body model and its schema in the published document
    model = {"ContactPatch": ContactPatch, "EndpointPatch": EndpointPatch,
             "AudiencePatch": AudiencePatch}[model_name]
    properties = document["components"]["schemas"][model_name]["properties"]
    for name, schema in properties.items():
        # When the field alone is sent as null
        try:
            model.model_validate({name: None})
            refused: list[str] = []
        except ValidationError as err:
            refused = [e.field for e in from_validation_error(err).errors]
        # Then it is refused, naming the field, exactly when the document does not allow null
        assert (name in refused) is not _nullable(schema), (model_name, name, refused)
