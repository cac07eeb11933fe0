"""Each function's IAM policy in template.yaml allows what the function really does.

Every DynamoDB call a scenario makes through a function's handler is recorded as
``(action, table)`` — transactions as their inner Put/Update/Delete/ConditionCheck, which
is how IAM authorises them — and checked against that function's policy statements.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from samcli.yamlhelper import parse_yaml_file

from contacts_core.store import dynamodb_client
from devstack.routes import TEMPLATE

TRANSACT_ACTIONS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                    "ConditionCheck": "ConditionCheckItem"}


class AccessLog:
    def __init__(self) -> None:
        self.seen: set[tuple[str, str]] = set()

    def record(self, model, params, **_: object) -> None:
        name = model.name
        if name == "TransactWriteItems":
            for item in params["TransactItems"]:
                (kind, body), = item.items()
                self.seen.add((TRANSACT_ACTIONS[kind], body["TableName"]))
        elif name.startswith("Batch"):
            for table in params["RequestItems"]:
                self.seen.add((name, table))
        else:
            self.seen.add((name, params["TableName"]))


@pytest.fixture
def access(dynamodb: str) -> Iterator[AccessLog]:
    log = AccessLog()
    events = dynamodb_client().meta.events
    events.register("before-parameter-build.dynamodb", log.record)
    yield log
    events.unregister("before-parameter-build.dynamodb", log.record)


def allowed(function_id: str) -> set[tuple[str, str]]:
    """``(action, table)`` pairs the function's policy grants (table = local name)."""
    resources = parse_yaml_file(str(TEMPLATE))["Resources"]  # raw: GetAtt unresolved
    grants = set()
    for policy in resources[function_id]["Properties"]["Policies"]:
        for statement in policy["Statement"]:
            targets = statement["Resource"]
            targets = targets if isinstance(targets, list) else [targets]
            tables = {t["Fn::GetAtt"][0] for t in targets if isinstance(t, dict)
                      and "Fn::GetAtt" in t}
            grants |= {(a.removeprefix("dynamodb:"), t) for a in statement["Action"]
                       for t in tables}
    return grants


def exercise(api, org_id: str) -> None:
    """Drive every route through create, conflict, upsert variants, patches, list, delete."""
    sam = {"phone": "+27821234567", "email": "sam@example.com", "first_name": "Sam"}
    cid = api.request("POST", "/v1/contacts", org_id=org_id, json_body=sam).body["id"]
    api.request("POST", "/v1/contacts", org_id=org_id, json_body=sam)
    for body in (sam, sam | {"first_name": "S"}, sam | {"email": "s2@example.com"},
                 {"phone": "+27821234568"}):
        api.request("POST", "/v1/contacts/upsert", org_id=org_id, json_body=body)
    for patch in ({"tags": ["a"]}, {"email": "s3@example.com"}, {"attributes": {"x": 1}}):
        api.request("PATCH", f"/v1/contacts/{cid}", org_id=org_id, json_body=patch)
    for query in ({}, {"search": "sam"}, {"search": "+27821234567"}, {"search": "a@b.co"}):
        api.request("GET", "/v1/contacts", org_id=org_id, query=query)
    api.request("GET", f"/v1/contacts/{cid}", org_id=org_id)
    others = [api.request("POST", "/v1/contacts", org_id=org_id,
                          json_body={"email": f"m{i}@example.com"}).body["id"] for i in range(3)]
    aud = api.request("POST", "/v1/audiences", org_id=org_id, json_body={"name": "A"}).body["id"]
    members = {"contact_ids": [cid, *others]}
    api.request("POST", f"/v1/audiences/{aud}/contacts", org_id=org_id, json_body=members)
    api.request("POST", "/v1/contacts/add-to-audience", org_id=org_id,
                json_body=members | {"audience_id": aud})
    api.request("GET", f"/v1/audiences/{aud}/contacts", org_id=org_id)
    api.request("POST", f"/v1/audiences/{aud}/contacts/remove", org_id=org_id,
                json_body={"contact_ids": others[:1]})
    api.request("GET", "/v1/audiences", org_id=org_id)
    api.request("GET", f"/v1/audiences/{aud}", org_id=org_id)
    api.request("PATCH", f"/v1/audiences/{aud}", org_id=org_id, json_body={"name": "B"})
    api.request("POST", "/v1/contacts/bulk", org_id=org_id, json_body={"contacts": [
        sam | {"first_name": "Bulk"}, {"phone": "+27821234599"},
        {"phone": "+27821234568", "email": "moved@example.com"}]})
    api.request("GET", "/v1/contacts/export", org_id=org_id)
    api.request("DELETE", f"/v1/contacts/{cid}", org_id=org_id)
    api.request("POST", "/v1/contacts/bulk-delete", org_id=org_id,
                json_body={"contact_ids": others[1:]})
    api.request("DELETE", f"/v1/audiences/{aud}", org_id=org_id)


def test_every_dynamodb_call_is_granted_by_the_functions_policy(api, org_id, access):
    by_function: dict[str, set[tuple[str, str]]] = {}
    original = api.request

    def recording(method, path, **kwargs):
        access.seen = set()
        response = original(method, path, **kwargs)
        route = next(r for r in api.routes if r.method == method and r.pattern.match(path))
        by_function.setdefault(route.function_id, set()).update(access.seen)
        return response

    api.request = recording
    try:
        exercise(api, org_id)
    finally:
        api.request = original
    assert set(by_function) == {r.function_id for r in api.routes}
    for function_id, used in by_function.items():
        missing = used - allowed(function_id)
        assert not missing, f"{function_id} calls {missing} without permission"
