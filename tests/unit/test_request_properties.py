"""Request models against arbitrary JSON (SPEC §9.1: every input gets a 4xx, never a 5xx).

For every request model, any JSON value either validates, or raises pydantic's
ValidationError, which :func:`problems.from_validation_error` turns into a ValidationFailed
whose every error names a field. Nothing else may escape: another exception would be a 500.
A model that validates holds only attribute values DynamoDB can store.

Values come from a ``st.recursive`` JSON strategy with what Python's JSON parser can
produce besides plain JSON: NaN, ±Infinity, integers of any size, and text from every
Unicode category. Unpaired surrogates are left out here: the HTTP layer refuses them
before any model sees them (tests/integration/test_odd_inputs.py).
"""

from __future__ import annotations

import base64
import json
import math
import re
from decimal import Decimal
from typing import Any

import jsonschema
import pytest
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from boto3.dynamodb.types import TypeSerializer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from contacts_core.audiences.models import (
    AddToAudienceRequest,
    AudienceCreate,
    AudiencePatch,
    MembersRequest,
)
from contacts_core.audiences.operations import PageQuery
from contacts_core.contacts.bulk import BulkDeleteRequest, BulkUpsertRequest
from contacts_core.contacts.exports import ExportQuery
from contacts_core.contacts.requests import ContactCreate, ContactPatch, ContactUpsert
from contacts_core.contacts.search import ListQuery
from contacts_core.errors import ValidationFailed
from contacts_core.http.handler import ApiRequest
from contacts_core.http.problems import from_validation_error
from contacts_core.ids import CONTACT_PREFIX, is_resource_id, new_contact_id
from contacts_core.webhooks.models import EndpointCreate, EndpointPatch

REQUEST_MODELS: list[type[BaseModel]] = [
    ContactCreate, ContactUpsert, ContactPatch, BulkUpsertRequest, BulkDeleteRequest,
    AudienceCreate, AudiencePatch, MembersRequest, AddToAudienceRequest,
    EndpointCreate, EndpointPatch, ListQuery, PageQuery, ExportQuery,
]
CONTACT_MODELS: list[type[BaseModel]] = [ContactCreate, ContactUpsert, ContactPatch]
PYTHON_WORDS = re.compile(r"dictionary|instance of|valid list|valid tuple|after validation|"
                          r"\b[A-Z][a-z]+[A-Z]\w*")

# DynamoDB's Number type (Developer Guide, "Supported data types"): 38 digits of precision,
# magnitudes 1E-130 .. 9.9999999999999999999999999999999999999E+125, and zero.
SMALLEST = Decimal("1E-130")
LARGEST = Decimal("9.9999999999999999999999999999999999999E+125")

numbers = st.one_of(
    st.integers(),
    st.integers(min_value=10**36, max_value=10**42).flatmap(lambda n: st.sampled_from([n, -n])),
    st.integers(min_value=10**40, max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e-130, -1e-130, 1e-131, 5e-324, 9.99e125, 1e126, -1e126,
                     1e308, 10**38 - 1, 10**38, -(10**38)]),
)
text = st.text(max_size=40) | st.text(st.characters(codec="utf-8"), max_size=300)
scalars = st.none() | st.booleans() | numbers | text
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(text, children, max_size=5),
    max_leaves=25,
)


def field_dicts(model: type[BaseModel]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects whose keys are mostly the model's own fields (so validation goes deep)."""
    keys = st.sampled_from(sorted(model.model_fields)) | text
    return st.dictionaries(keys, json_values, max_size=8)


def contact_bodies() -> st.SearchStrategy[dict[str, Any]]:
    """Contact bodies valid but for their attributes, which may hold any JSON value (mostly
    scalars), so the attribute rules decide the outcome."""
    attributes = st.dictionaries(st.text(min_size=1, max_size=8), scalars | json_values,
                                 max_size=6)
    return st.fixed_dictionaries(
        {"email": st.sampled_from(["sam@example.com", "Zoë@Example.org"]),
         "attributes": attributes},
        optional={"first_name": text, "tags": st.lists(st.text(min_size=1, max_size=64))})


def any_input(model: type[BaseModel]) -> st.SearchStrategy[Any]:
    strategies = [json_values, field_dicts(model)]
    if model in CONTACT_MODELS:
        strategies.append(contact_bodies())
    if model in (ListQuery, PageQuery, ExportQuery):  # query strings are text → text
        strategies.append(st.dictionaries(st.sampled_from(sorted(model.model_fields)) | text,
                                          text | numbers.map(str), max_size=4))
    return st.one_of(strategies)


def storable_number(value: int | float) -> bool:
    """True when DynamoDB can hold ``value`` as a Number, judged on the decimal text."""
    exact = Decimal(value) if isinstance(value, int) else Decimal(repr(value))
    if not exact.is_finite():
        return False
    if exact == 0:
        return True
    if not SMALLEST <= abs(exact) <= LARGEST:
        return False
    digits = exact.normalize().as_tuple().digits
    return len(digits) <= 38 or (isinstance(value, int) and abs(value) < 10**38)


def assert_storable(model: BaseModel) -> None:
    attributes = getattr(model, "attributes", None) or {}
    for key, value in attributes.items():
        assert value is None or isinstance(value, str | bool | int | float), (key, value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            assert not (isinstance(value, float) and not math.isfinite(value)), (key, value)
            assert storable_number(value), (key, value)
            TypeSerializer().serialize(Decimal(repr(value)) if isinstance(value, float)
                                       else value)
    model.model_dump_json()  # what the API would echo back


def validate_or_name_fields(model: type[BaseModel], data: Any) -> BaseModel | None:
    """The model, or None after checking the ValidationFailed names every field."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        failed = from_validation_error(err)
    assert isinstance(failed, ValidationFailed) and failed.errors
    for error in failed.errors:
        assert isinstance(error.field, str) and error.field, error
        assert isinstance(error.message, str) and error.message, error
        # in the body's words (JSON), never Python's: no "dictionary", no model class
        assert not PYTHON_WORDS.search(error.message), error
    json.dumps(failed.extensions())  # the problem body can be rendered
    return None


@pytest.mark.parametrize("model", REQUEST_MODELS, ids=lambda m: m.__name__)
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_json_validates_or_fails_naming_fields(model: type[BaseModel], data: st.DataObject):
    # Given any JSON value, mostly shaped like the model's body
    value = data.draw(any_input(model))
    # When the model validates it
    validated = validate_or_name_fields(model, value)
    # Then it either failed naming fields, or what it holds can be stored
    if validated is not None:
        assert_storable(validated)


@settings(max_examples=300, deadline=None)
@given(body=contact_bodies())
def test_a_contact_with_attributes_validates_only_when_storable(body: dict[str, Any]):
    # Given a contact body whose attributes may hold any JSON value
    # When it is validated (as create, upsert and PATCH, and as a bulk item: same model)
    for model in CONTACT_MODELS:
        validated = validate_or_name_fields(model, body)
        # Then a validated one stores; a refused one names the offending attribute
        if validated is not None:
            assert_storable(validated)


@pytest.mark.parametrize("value", [
    math.nan, math.inf, -math.inf, 1e-200, 10**40, 10**38, 1e126, 10**400,
    -(10**39), 5e-324, 1e50, -1e50, 1e38, 9.99e125,
], ids=repr)
@pytest.mark.parametrize("model", CONTACT_MODELS, ids=lambda m: m.__name__)
def test_unstorable_numbers_are_refused_naming_the_attribute(model: type[BaseModel],
                                                             value: Any):
    # Given an attribute value DynamoDB cannot store next to a fine one
    body = {"email": "sam@example.com", "attributes": {"fine": 1, "score": value}}
    # When the body is validated
    with pytest.raises(ValidationError) as err:
        model.model_validate(body)
    # Then the one error names attributes.score
    assert [e.field for e in from_validation_error(err.value).errors] == ["attributes.score"]


@pytest.mark.parametrize("value", [
    0, -0.0, 1e-130, -1e-130, 10**38 - 1, -(10**38 - 1), 1.5, True,
    "text", None,
], ids=repr)
def test_storable_values_at_the_edges_are_taken(value: Any):
    body = {"email": "sam@example.com", "attributes": {"score": value}}
    validated = ContactCreate.model_validate(body)
    assert validated.attributes == {"score": value}
    assert_storable(validated)


def test_attribute_schema_documents_the_number_range():
    # Given the JSON Schema of an attribute value (openapi.json is generated from it)
    schema = ContactCreate.model_json_schema()["properties"]["attributes"]["anyOf"][0]
    branches = schema["additionalProperties"]["anyOf"]
    integer = next(b for b in branches if b.get("type") == "integer")
    number = next(b for b in branches if b.get("type") == "number")
    # Then integers stop at 38 digits and other numbers below 1E+38 (no whole number
    # beyond 38 digits, however written)
    assert integer["maximum"] == 10**38 - 1 and integer["minimum"] == -(10**38 - 1)
    assert {"minimum": 1e-130, "exclusiveMaximum": 1e38} in number["anyOf"]
    # and a body holds up to 50 values plus as many removals (null) as a contact has keys
    assert schema["maxProperties"] == 100


def test_create_schema_requires_an_identifier_and_patch_a_field():
    create = ContactCreate.model_json_schema()
    assert [b["required"] for b in create["anyOf"]] == [["phone"], ["email"], ["external_id"]]
    assert ContactUpsert.model_json_schema()["anyOf"] == create["anyOf"]
    assert ContactPatch.model_json_schema()["minProperties"] == 1


# ------------------------------------------------------------ the HTTP layer's parsing
def request_of(body: str | None = None, base64_encoded: bool = False,
               headers: dict[str, str] | None = None,
               query: dict[str, str] | None = None) -> ApiRequest:
    event = {"version": "2.0", "body": body, "isBase64Encoded": base64_encoded,
             "headers": headers or {}, "queryStringParameters": query,
             "requestContext": {"requestId": "r", "http": {"method": "POST"}}}
    return ApiRequest(APIGatewayProxyEventV2(event), "org", "r")


def refused_naming_fields(call) -> None:
    """``call`` returns, or raises ValidationFailed naming fields; nothing else."""
    try:
        call()
    except ValidationFailed as failed:
        assert failed.errors and all(e.field for e in failed.errors)
        json.dumps(failed.extensions())


surrogates = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
odd_text = st.text(st.characters() | surrogates, max_size=60)  # unpaired surrogates too


@settings(max_examples=300, deadline=None)
@given(payload=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()),
       as_text=st.booleans(), model=st.sampled_from(REQUEST_MODELS))
def test_any_body_bytes_parse_or_fail_naming_fields(payload: bytes, as_text: bool,
                                                    model: type[BaseModel]):
    # Given any body: bytes API Gateway base64-encodes, or text that may hold surrogates
    body = (payload.decode("utf-8", errors="surrogateescape") if as_text
            else base64.b64encode(payload).decode())
    request = request_of(body, base64_encoded=not as_text)
    # When a handler reads it as its model, Then it gets the model or a ValidationFailed
    refused_naming_fields(lambda: request.body(model))


@settings(max_examples=200, deadline=None)
@given(body=odd_text.map(lambda t: json.dumps({"email": "a@b.co", "first_name": t,
                                                "attributes": {t or "k": t}})))
def test_escaped_surrogates_in_a_body_are_refused_naming_the_field(body: str):
    refused_naming_fields(lambda: request_of(body).body(ContactCreate))


@settings(max_examples=300, deadline=None)
@given(value=odd_text | st.integers(min_value=0).map(lambda n: f'"{n}"'))
def test_any_if_match_is_a_small_version_or_refused(value: str):
    request = request_of(headers={"if-match": value})
    try:
        version = request.if_match()
    except ValidationFailed as failed:
        assert [e.field for e in failed.errors] == ["If-Match"]
        return
    assert version is None or 0 <= version < 10**18


@settings(max_examples=300, deadline=None)
@given(query=st.dictionaries(st.sampled_from(["limit", "cursor", "search", "tag", "sort",
                                              "order"]) | odd_text, odd_text, max_size=4),
       model=st.sampled_from([ListQuery, PageQuery, ExportQuery]))
def test_any_query_string_validates_or_fails_naming_fields(query: dict[str, str],
                                                           model: type[BaseModel]):
    refused_naming_fields(lambda: request_of(query=query).query_model(model))


@settings(max_examples=500)
@given(value=odd_text | st.from_regex(r"con_[0-7][0-9A-HJKMNP-TV-Z]{25}", fullmatch=True))
def test_an_id_is_well_formed_only_as_prefix_and_ulid(value: str):
    expected = re.fullmatch(r"con_[0-7][0-9A-HJKMNP-TV-Z]{25}", value) is not None
    assert is_resource_id(value, CONTACT_PREFIX) == expected
    assert not is_resource_id(value, "aud_")


def test_ids_we_issue_are_well_formed():
    assert all(is_resource_id(new_contact_id()[0], CONTACT_PREFIX) for _ in range(100))


# The one double no JSON Schema bound can place: 1e38 (the text "1e38", i.e. 10**38, which
# the server refuses as 39 digits) is stored as 99999999999999997748809823456034029568, a
# whole number under the documented integer maximum 10**38 - 1 when compared exactly.
AMBIGUOUS_DOUBLES = (1e38, -1e38)


@given(numbers.filter(lambda v: not (isinstance(v, float) and v in AMBIGUOUS_DOUBLES)))
def test_a_number_is_taken_exactly_when_the_documented_schema_takes_it(value: Any):
    # Given any number, in either notation Python's JSON parser gives (int or float)
    schema = ContactCreate.model_json_schema()["properties"]["attributes"]["anyOf"][0]
    documented = jsonschema.Draft202012Validator(schema["additionalProperties"])
    # When it is an attribute value of a create
    body = {"email": "sam@example.com", "attributes": {"score": value}}
    try:
        ContactCreate.model_validate(body)
        taken = True
    except ValidationError:
        taken = False
    # Then the server takes it exactly when openapi.json says it may (JSON Schema's
    # "integer" is any whole value, so 1e50 is an integer over the maximum, as 10**50 is)
    finite = not (isinstance(value, float) and not math.isfinite(value))
    assert taken == (finite and documented.is_valid(value)), value
