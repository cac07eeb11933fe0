"""The committed OpenAPI document is what the models and template.yaml generate, and it
describes what the server accepts and answers (ids, cursors, ETags, problem statuses)."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st
from openapi_spec_validator import validate
from pydantic import BaseModel, ValidationError

from contacts_core.audiences.models import AudiencePatch
from contacts_core.contacts.requests import ContactPatch
from contacts_core.http.cursor import encode_cursor
from contacts_core.http.problems import from_validation_error
from contacts_core.ids import new_contact_id
from contacts_core.keys import KeyRing
from contacts_core.webhooks.models import EVENT_TYPES, EndpointPatch
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


# Text as a client may send it: printable, control characters (C0, DEL), commas; no
# surrounding whitespace (trimmed before the length checks, which the document cannot say).
free_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]) |
                    st.sampled_from([chr(c) for c in range(0x20)] + ["\x7f", ","]),
                    min_size=1, max_size=20).filter(lambda t: t == t.strip())
FREE_TEXT_FIELDS = [  # model, its schema, the field, a body holding the text
    (ContactPatch, "ContactPatch", "first_name", lambda t: {"first_name": t}),
    (ContactPatch, "ContactPatch", "tags", lambda t: {"tags": [t]}),
    (ContactPatch, "ContactPatch", "attributes", lambda t: {"attributes": {t: 1}}),
    # (a name must also show something once folded: "´" alone is refused, not said)
    (AudiencePatch, "AudiencePatch", "name", lambda t: {"name": "n" + t}),
    (AudiencePatch, "AudiencePatch", "description", lambda t: {"description": t}),
    (EndpointPatch, "EndpointPatch", "description", lambda t: {"description": t}),
]


def assert_taken_as_documented(model: type[BaseModel], body: dict[str, Any], field: str,
                               schema: dict[str, Any]) -> None:
    """``model`` takes ``body`` exactly when ``schema`` (the document's, of ``field``) takes
    ``body[field]``; a refusal names ``field``."""
    try:
        model.model_validate(body)
        taken = True
    except ValidationError as err:
        assert [e.field.split(".")[0] for e in from_validation_error(err).errors] == [field]
        taken = False
    documented = jsonschema.Draft202012Validator(schema).is_valid(body[field])
    assert taken == documented, (field, ascii(body[field]))


@pytest.mark.parametrize(("model", "schema_name", "field", "body"), FREE_TEXT_FIELDS,
                         ids=[f"{f[1]}.{f[2]}" for f in FREE_TEXT_FIELDS])
@given(text=free_text)
def test_free_text_is_taken_exactly_when_the_document_takes_it(document, model, schema_name,
                                                               field, body, text):
    # Given a free-text field and its schema in the published document
    schema = document["components"]["schemas"][schema_name]["properties"][field]
    # When a text of control characters, commas or anything else is sent in it
    # Then the server takes it exactly when the document says it may
    assert_taken_as_documented(model, body(text), field, schema)


def test_only_the_routes_that_read_a_body_declare_one(document):
    # Given every operation of the document
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            # Then a GET declares no body (the member listing declared the POST's
            # MembersRequest, required, so generated clients had to send one)
            if method == "get":
                assert "requestBody" not in operation, path
    # and the member add, on the same path, still does
    adding = document["paths"]["/v1/audiences/{id}/contacts"]["post"]["requestBody"]
    assert adding["content"]["application/json"]["schema"]["$ref"].endswith("/MembersRequest")


@given(events=st.lists(st.sampled_from([*EVENT_TYPES, "*"]), min_size=0, max_size=13))
def test_events_are_taken_exactly_when_the_document_takes_them(document, events):
    # Given a subscription list of event types and "*" in any mix
    schema = document["components"]["schemas"]["EndpointPatch"]["properties"]["events"]
    # When it is sent
    # Then the server takes it exactly when the document does ("*" alone, or event types)
    assert_taken_as_documented(EndpointPatch, {"events": events}, "events", schema)


@given(text=st.text(st.characters(exclude_categories=["Cs", "Cn"], max_codepoint=0xFFFF),
                    min_size=1, max_size=12).filter(lambda t: t == t.strip()))
def test_an_external_id_is_taken_exactly_when_the_document_takes_it(document, text):
    # Given an external id of any assigned character of the BMP (the document's pattern
    # names those the server refuses there; unassigned ones only in its description)
    schema = document["components"]["schemas"]["ContactPatch"]["properties"]["external_id"]
    # When it is sent
    # Then the server takes it exactly when the document does
    assert_taken_as_documented(ContactPatch, {"external_id": text}, "external_id", schema)
