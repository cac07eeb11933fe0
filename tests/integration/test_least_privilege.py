"""Each function's IAM policy in template.yaml allows what the function really does.

Every DynamoDB, SQS, KMS and Secrets Manager call a scenario makes through a function's
handler is recorded as
``(service:action, resource logical id)`` — transactions as their inner Put/Update/Delete/
ConditionCheck, which is how IAM authorises them — and checked against that function's
policy statements. The stream-triggered functions run through the webhook pipeline.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from samcli.yamlhelper import parse_yaml_file

from contacts_core.audiences.store import AudienceStore
from contacts_core.contacts.store import ContactStore
from contacts_core.dynamodb import dynamodb_client
from devstack.routes import TEMPLATE
from tests.support.iam import as_list, function_statements
from tests.support.imports import imports_env  # noqa: F401 - fixture

# S3 API calls → the IAM action that grants them (multipart uploads are s3:PutObject)
S3_ACTIONS = {"CreateMultipartUpload": "PutObject", "UploadPart": "PutObject",
              "CompleteMultipartUpload": "PutObject"}
TRANSACT_ACTIONS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                    "ConditionCheck": "ConditionCheckItem"}


class AccessLog:
    """What each function did, keyed by the function running at the time."""

    def __init__(self) -> None:
        self.current: str | None = None
        self.by_function: dict[str, set[tuple[str, str]]] = {}
        self.key_ids: dict[str, str] = {}

    def add(self, action: str, resource: str) -> None:
        if self.current:
            self.by_function.setdefault(self.current, set()).add((action, resource))

    def record_dynamodb(self, model, params, **_: object) -> None:
        name = model.name
        if name == "TransactWriteItems":
            for item in params["TransactItems"]:
                (kind, body), = item.items()
                self.add("dynamodb:" + TRANSACT_ACTIONS[kind], body["TableName"])
        elif name.startswith("Batch"):
            for table in params["RequestItems"]:
                self.add("dynamodb:" + name, table)
        else:
            self.add("dynamodb:" + name, params["TableName"])

    def record_sqs(self, model, params, **_: object) -> None:
        queue = params["QueueUrl"].rsplit("/", 1)[-1].removesuffix(".fifo")
        action = "SendMessage" if model.name == "SendMessageBatch" else model.name
        self.add("sqs:" + action, queue)

    def record_kms(self, model, params, **_: object) -> None:
        self.add("kms:" + model.name, self.key_ids[params["KeyId"]])

    def record_s3(self, model, params, **_: object) -> None:
        # objects of the imports bucket, by the key's first folder (uploads/, errors/)
        action = S3_ACTIONS.get(model.name, model.name)
        self.add("s3:" + action, f"ImportsBucket/{params['Key'].split('/', 1)[0]}")

    def record_secretsmanager(self, model, params, **_: object) -> None:
        # a secret's ARN ends in ":<name>-<6 random characters>"; its name is the logical id
        name = params["SecretId"].rsplit(":", 1)[-1].rsplit("-", 1)[0]
        self.add("secretsmanager:" + model.name, name)


@pytest.fixture
def access(dynamodb: str, sqs: dict[str, str], aws_keys: dict[str, str],
           imports_env: str) -> Iterator[AccessLog]:  # noqa: F811 - the fixture
    from contacts_core.imports.files import s3_client
    from contacts_core.keys import forget_cursor_keys, kms_client, secretsmanager_client
    from contacts_core.webhooks.queue import sqs_client

    log = AccessLog()
    log.key_ids = {v: k for k, v in aws_keys.items()}
    forget_cursor_keys()  # the cursor key ring is read (and recorded) again
    hooks = [(dynamodb_client().meta.events, "before-parameter-build.dynamodb",
              log.record_dynamodb),
             (sqs_client().meta.events, "before-parameter-build.sqs", log.record_sqs),
             (kms_client().meta.events, "before-parameter-build.kms", log.record_kms),
             (secretsmanager_client().meta.events, "before-parameter-build.secrets-manager",
              log.record_secretsmanager),
             (s3_client().meta.events, "before-parameter-build.s3", log.record_s3)]
    for events, name, handler in hooks:
        events.register(name, handler)
    yield log
    for events, name, handler in hooks:
        events.unregister(name, handler)


def allowed(function_id: str) -> set[tuple[str, str]]:
    """``(action, logical id)`` pairs the function's policy grants."""
    resources = parse_yaml_file(str(TEMPLATE))["Resources"]  # raw: GetAtt unresolved
    grants = set()
    for statement in function_statements(resources, function_id):
        targets = as_list(statement["Resource"])
        tables = {t["Fn::GetAtt"][0] for t in targets if isinstance(t, dict)
                  and "Fn::GetAtt" in t} | {t["Ref"] for t in targets
                                            if isinstance(t, dict) and "Ref" in t}
        objects = {sub.removeprefix("${").replace(".Arn}", "").split("/*")[0]
                   for sub in (t["Fn::Sub"] for t in targets
                               if isinstance(t, dict) and "Fn::Sub" in t)}
        grants |= {(a, t) for a in as_list(statement["Action"]) for t in tables | objects}
    return grants


def plant_guards_of_a_deleted_contact(org_id: str, identities: list[tuple[str, str]]) -> None:
    """Guards pointing at a contact that does not exist, written with a client of its own
    (not recorded: no function wrote them)."""
    import boto3

    store = ContactStore(boto3.client("dynamodb"))
    for field, value in identities:
        store.client.put_item(TableName=store.identities_table, Item={
            "identity": {"S": store.guard_id(org_id, field, value)},
            "contact_id": {"S": "con_01JD8Q2M6W3YQ0V4C7N5T9KX2B"}, "org_id": {"S": org_id}})


def exercise(api, org_id: str) -> None:
    """Drive every route through create, conflict, upsert variants, patches, list, delete."""
    sam = {"phone": "+27821234567", "email": "sam@example.com", "first_name": "Sam"}
    cid = api.request("POST", "/v1/contacts", org_id=org_id, json_body=sam).body["id"]
    api.request("POST", "/v1/contacts", org_id=org_id, json_body=sam)
    # Idempotency-Key: recorded, replayed, and freed again after a 400
    keyed = {"headers": {"Idempotency-Key": f"key-{cid}"}, "org_id": org_id}
    for _ in range(2):
        api.request("POST", "/v1/contacts", json_body={"email": "keyed@example.com"}, **keyed)
    api.request("POST", "/v1/contacts", org_id=org_id, json_body={"email": "x"},
                headers={"Idempotency-Key": f"bad-{cid}"})
    for body in (sam, sam | {"first_name": "S"}, sam | {"email": "s2@example.com"},
                 {"phone": "+27821234568"}, {"phone": "+27821234568", "external_id": "crm-1"},
                 {"external_id": "crm-1", "first_name": "Ext"}):
        api.request("POST", "/v1/contacts/upsert", org_id=org_id, json_body=body)
    # guards left pointing at a contact that is gone: single and bulk upsert heal them
    plant_guards_of_a_deleted_contact(org_id, [("phone", "+27821230077"),
                                               ("email", "stale@example.com")])
    api.request("POST", "/v1/contacts/upsert", org_id=org_id, json_body={"phone": "+27821230077"})
    api.request("POST", "/v1/contacts/bulk", org_id=org_id,
                json_body={"contacts": [{"email": "stale@example.com"}]})
    for patch in ({"tags": ["a"]}, {"email": "s3@example.com"}, {"attributes": {"x": 1}},
                  {"first_name": "Samuel", "last_name": "Mokoena"}, {"name": None}):
        api.request("PATCH", f"/v1/contacts/{cid}", org_id=org_id, json_body=patch)
    for query in ({}, {"search": "sam"}, {"search": "+27821234567"}, {"search": "a@b.co"},
                  {"external_id": "crm-1"}, {"search": "crm-1"}):
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
    for query in ({"audience_id": aud, "tag": "a"}, {"sort": "name"}, {"search": "moko sam"},
                  {"sort": "updated_at", "updated_after": "2020-01-01T00:00:00Z"}):
        api.request("GET", "/v1/contacts", org_id=org_id, query=query)
    api.request("GET", f"/v1/contacts/{cid}/audiences", org_id=org_id)
    api.request("POST", "/v1/contacts/batch-get", org_id=org_id,
                json_body={"ids": [cid, *others, "con_nope"]})
    api.request("POST", f"/v1/audiences/{aud}/contacts/remove", org_id=org_id,
                json_body={"contact_ids": others[:1]})
    # a merge moving a membership (others[1] is in the audience) and an identity
    merged_into = api.request("POST", "/v1/contacts", org_id=org_id,
                              json_body={"phone": "+27821234511"}).body["id"]
    for _ in range(2):  # the second is a repeat: it reads the merge record
        api.request("POST", f"/v1/contacts/{merged_into}/merge", org_id=org_id,
                    json_body={"source_id": others[1]})
    others[1] = merged_into
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


def import_a_file(api, org_id: str, invoke) -> str:
    """An import job with a failed row: created, uploaded, started by its S3 event
    (``invoke``), run later by the pipeline; returns its id."""
    from contacts_core.imports.files import ImportFiles, upload_key
    from tests.support.imports import s3_event

    job = api.request("POST", "/v1/imports", org_id=org_id, json_body={}).body
    data = b"phone,first_name\r\n+27821239901,Imported\r\nnot a phone,Failed\r\n"
    etag = requests.put(job["upload_url"], data=data, timeout=30).headers["ETag"]
    invoke("StartImportFunction", s3_event(ImportFiles().bucket,
                                           upload_key(org_id, job["id"]), len(data), etag))
    api.request("GET", "/v1/imports", org_id=org_id)
    return str(job["id"])


def leave_an_audience_delete_to_the_stream(api, org_id: str) -> str:
    """An audience with a member whose DELETE leaves all the work to the stream."""
    from contacts_core.audiences import operations as audiences

    member = api.request("POST", "/v1/contacts", org_id=org_id,
                         json_body={"email": "left@example.com"}).body["id"]
    aud = api.request("POST", "/v1/audiences", org_id=org_id, json_body={"name": "C"}).body["id"]
    api.request("POST", f"/v1/audiences/{aud}/contacts", org_id=org_id,
                json_body={"contact_ids": [member]})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(audiences, "INLINE_DELETE_MEMBERS", 0)
        api.request("DELETE", f"/v1/audiences/{aud}", org_id=org_id)
    return aud


def rotate_cursor_keys(aws_keys: dict[str, str], invoke) -> None:
    """One rotation of each rotating secret by its rotation function (``invoke(function_id,
    event)``), as Secrets Manager runs it."""
    from devstack.keys import rotate_secret, rotation_schedules

    for secret, (function_id, _) in rotation_schedules(TEMPLATE).items():
        rotate_secret(aws_keys[secret], function_id, invoke)


def test_every_call_is_granted_by_the_functions_policy(api, org_id, access, pipeline,
                                                        aws_keys):
    from devstack.receiver import WebhookReceiver

    original_request, original_invoke = api.request, pipeline.invoke

    def recording(method, path, **kwargs):
        route = next(r for r in api.routes if r.method == method and r.pattern.match(path))
        access.current = route.function_id
        try:
            return original_request(method, path, **kwargs)
        finally:
            access.current = None

    def invoking(function_id, event):
        access.current = function_id
        try:
            return original_invoke(function_id, event)
        finally:
            access.current = None

    receiver = WebhookReceiver(respond=lambda path, event, n: 500 if n == 0 else 200).start()
    api.request, pipeline.invoke = recording, invoking
    for poller in [*pipeline.streams, *pipeline.queues]:
        poller.invoke = invoking
    try:
        hook = api.request("POST", "/v1/webhook-endpoints", org_id=org_id,
                           json_body={"url": receiver.url + "/", "events": ["*"]}).body
        api.request("GET", "/v1/webhook-endpoints", org_id=org_id)
        api.request("GET", f"/v1/webhook-endpoints/{hook['id']}", org_id=org_id)
        exercise(api, org_id)
        for email in ("p1@example.com", "p2@example.com"):  # a second page: cursor keys
            api.request("POST", "/v1/contacts", org_id=org_id, json_body={"email": email})
        page = api.request("GET", "/v1/contacts", org_id=org_id, query={"limit": "1"}).body
        api.request("GET", "/v1/contacts", org_id=org_id,
                    query={"limit": "1", "cursor": page["next_cursor"]})
        rotate_cursor_keys(aws_keys, invoking)
        left = leave_an_audience_delete_to_the_stream(api, org_id)
        imported = import_a_file(api, org_id, invoking)
        pipeline.pump(lambda: sum(r.status == 200 for r in receiver.received) >= 10
                      and AudienceStore().get(org_id, left) is None
                      and any(r.event.get("type") == "import.completed"
                              for r in receiver.received), timeout=60)
        assert api.request("GET", f"/v1/imports/{imported}", org_id=org_id).body["failed"] == 1
        listed = api.request("GET", "/v1/imports", org_id=org_id)  # links to its errors file
        assert listed.status == 200 and listed.body["data"][0]["errors_url"], listed.body
        api.request("PATCH", f"/v1/webhook-endpoints/{hook['id']}", org_id=org_id,
                    json_body={"enabled": False})
        api.request("DELETE", f"/v1/webhook-endpoints/{hook['id']}", org_id=org_id)
    finally:
        api.request, pipeline.invoke = original_request, original_invoke
        receiver.stop()
    resources = parse_yaml_file(str(TEMPLATE))["Resources"]
    functions = {r.function_id for r in api.routes  # those that call AWS at all
                 if resources[r.function_id]["Properties"].get("Policies") != []} | {
        "EmitWebhooksFunction", "DeliverWebhooksFunction", "FinishAudienceDeleteFunction",
        "RotateCursorKeyFunction", "StartImportFunction", "RunImportFunction"}
    assert set(access.by_function) == functions
    assert ("secretsmanager:GetSecretValue", "CursorKeySecret") in access.by_function[
        "ListContactsFunction"]
    assert ("kms:Encrypt", "WebhookSecretsKey") in access.by_function[
        "CreateWebhookEndpointFunction"]
    assert ("kms:Decrypt", "WebhookSecretsKey") in access.by_function["DeliverWebhooksFunction"]
    for function_id, used in access.by_function.items():
        missing = used - allowed(function_id)
        assert not missing, f"{function_id} calls {missing} without permission"
