"""template.yaml keeps the promises of SPEC §2, §3 and §6 (read raw, as CloudFormation will)."""

from __future__ import annotations

import json
import re

import pytest
from samcli.yamlhelper import parse_yaml_file

from devstack.routes import TEMPLATE
from tests.support.iam import as_list, function_statements

RESOURCES = parse_yaml_file(str(TEMPLATE))["Resources"]
PARAMETERS = parse_yaml_file(str(TEMPLATE))["Parameters"]


def of_type(kind: str) -> dict:
    return {k: v["Properties"] for k, v in RESOURCES.items() if v["Type"] == kind}


def test_retries_last_over_an_hour_in_at_least_five_attempts_then_dead_letter():
    parameter = PARAMETERS["WebhookRetryDelays"]
    delays = [int(d) for d in parameter["Default"].split(",")]
    assert len(delays) + 1 >= 5 and sum(delays) >= 3600
    # The deliverer dead-letters after the schedule's last attempt; the schedule takes 1 to 9
    # delays, so SQS's redrive (a backstop for crashes) never cuts a schedule short, and the
    # queue keeps a delivery longer than the longest schedule (9 × SQS's 12 h)
    allowed = re.compile(parameter["AllowedPattern"])
    assert allowed.fullmatch(parameter["Default"]) and allowed.fullmatch("1,1,1")
    assert allowed.fullmatch(",".join(["43200"] * 9)) and not allowed.fullmatch("1," * 9 + "1")
    assert not allowed.fullmatch("") and not allowed.fullmatch("1,,1")
    queue = RESOURCES["WebhookDeliveryQueue"]["Properties"]
    assert queue["RedrivePolicy"]["maxReceiveCount"] > 9 + 1
    assert queue["MessageRetentionPeriod"] > 9 * 43200
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["WebhookDeadLetterQueue", "Arn"]}
    deliverer = RESOURCES["DeliverWebhooksFunction"]["Properties"]["Environment"]["Variables"]
    assert deliverer["DEAD_LETTER_QUEUE_URL"] == {"Ref": "WebhookDeadLetterQueue"}


STREAM_MAPPINGS = {(function, name): event["Properties"]
                   for function, props in of_type("AWS::Serverless::Function").items()
                   for name, event in (props.get("Events") or {}).items()
                   if event["Type"] == "DynamoDB"}


def test_membership_events_come_from_the_contacts_stream_and_deletes_from_audiences():
    # every event about a contact comes from one stream (per-contact commit order, §6), and
    # an audience flagged deleting is finished by its own stream mapping (I5); import jobs
    # reaching their end give import.* events (§9.5)
    assert set(STREAM_MAPPINGS) == {("EmitWebhooksFunction", "ContactChanges"),
                                    ("EmitWebhooksFunction", "AudienceChanges"),
                                    ("EmitWebhooksFunction", "ImportChanges"),
                                    ("FinishAudienceDeleteFunction", "AudienceDeletes")}
    assert "StreamSpecification" not in RESOURCES["AudienceMembersTable"]["Properties"]
    finish = STREAM_MAPPINGS["FinishAudienceDeleteFunction", "AudienceDeletes"]
    assert finish["Stream"] == {"Fn::GetAtt": ["AudiencesTable", "StreamArn"]}
    (pattern,) = [json.loads(f["Pattern"]) for f in finish["FilterCriteria"]["Filters"]]
    assert pattern["eventName"] == ["MODIFY"]
    assert pattern["dynamodb"]["NewImage"] == {"deleting": {"BOOL": [True]}}


@pytest.mark.parametrize("key", sorted(STREAM_MAPPINGS))
def test_stream_mappings_are_bounded_and_report_partial_failures(key):
    props = STREAM_MAPPINGS[key]
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["BisectBatchOnFunctionError"] is True
    assert 0 <= props["MaximumRetryAttempts"] <= 10_000
    assert 60 <= props["MaximumRecordAgeInSeconds"] <= 604_800
    assert props["DestinationConfig"]["OnFailure"]["Type"] == "SQS"
    assert props["FilterCriteria"]["Filters"]


# Short-lived request state (rate buckets, Idempotency-Key records): it expires by TTL and
# would be wrong to restore, so no point-in-time recovery.
TRANSIENT_TABLES = {"RateLimitsTable", "IdempotencyTable"}


def test_data_tables_are_on_demand_with_point_in_time_recovery():
    for name, props in of_type("AWS::DynamoDB::Table").items():
        assert props["BillingMode"] == "PAY_PER_REQUEST", name
        if name in TRANSIENT_TABLES:
            assert props["TimeToLiveSpecification"]["Enabled"] is True, name
        else:
            assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"], name


def test_merge_records_expire_by_ttl_in_the_identities_table():
    from contacts_core.contacts.records import MERGE_RECORD_TTL_S

    ttl = of_type("AWS::DynamoDB::Table")["ContactIdentitiesTable"]["TimeToLiveSpecification"]
    assert ttl == {"AttributeName": "expires_at", "Enabled": True}
    # longer than a stream record lives (24 h) plus the emitter's retries, by far
    assert MERGE_RECORD_TTL_S >= 7 * 24 * 3600


# Functions that call no AWS service: their policy is explicitly empty.
NO_AWS_CALLS = {"DocsFunction"}


def test_every_function_has_its_own_policy_and_no_wildcards():
    for name in of_type("AWS::Serverless::Function"):
        statements = function_statements(RESOURCES, name) if name not in NO_AWS_CALLS else []
        assert bool(statements) == (name not in NO_AWS_CALLS), name
        for statement in statements:
            assert all("*" not in action for action in as_list(statement["Action"])), name


@pytest.mark.parametrize("function", ["BatchGetContactsFunction", "ListContactAudiencesFunction",
                                      "GetContactFunction", "ListAudienceMembersFunction"])
def test_read_operations_are_granted_reads_only(function):
    # request bookkeeping (the rate bucket; Idempotency-Key records on POST) is not data
    bookkeeping = [{"Fn::GetAtt": [t, "Arn"]} for t in ("RateLimitsTable", "IdempotencyTable")]
    statements = [s for s in function_statements(RESOURCES, function)
                  if s["Resource"] not in bookkeeping]
    actions = {a for s in statements for a in s["Action"]}
    assert actions <= {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query",
                       "secretsmanager:GetSecretValue"}, function


def test_batch_get_is_a_literal_route_not_taken_for_a_contact_id():
    # API Gateway prefers the literal /v1/contacts/batch-get; the local routing must agree
    from devstack.routes import template_routes

    post = [r for r in template_routes() if r.method == "POST"
            and r.pattern.match("/v1/contacts/batch-get")]
    assert post[0].function_id == "BatchGetContactsFunction"
    assert post[0].path == "/v1/contacts/batch-get"


def statements_of(function: str) -> list[dict]:
    return function_statements(RESOURCES, function)


def test_no_function_sees_a_secret_in_its_environment():
    # the cursor key ring is named (its ARN), never given; no parameter carries a key
    variables = parse_yaml_file(str(TEMPLATE))["Globals"]["Function"]["Environment"][
        "Variables"]
    assert variables["CURSOR_KEY_SECRET"] == {"Ref": "CursorKeySecret"}
    assert "CursorSecret" not in PARAMETERS and "CURSOR_SECRET" not in variables
    secret = RESOURCES["CursorKeySecret"]
    assert secret["Type"] == "AWS::SecretsManager::Secret"
    assert secret["Properties"]["GenerateSecretString"]["PasswordLength"] >= 32


def test_cursor_keys_rotate_through_their_own_function():
    schedule = of_type("AWS::SecretsManager::RotationSchedule")["CursorKeyRotationSchedule"]
    assert schedule["SecretId"] == {"Ref": "CursorKeySecret"}
    assert schedule["RotationLambdaARN"] == {"Fn::GetAtt": ["RotateCursorKeyFunction", "Arn"]}
    permission = RESOURCES["RotateCursorKeyPermission"]["Properties"]
    assert permission["Principal"] == "secretsmanager.amazonaws.com"
    assert all(s["Resource"] == {"Ref": "CursorKeySecret"}
               for s in statements_of("RotateCursorKeyFunction"))


def test_webhook_secrets_key_rotates_and_is_used_only_where_needed():
    key = of_type("AWS::KMS::Key")["WebhookSecretsKey"]
    assert key["EnableKeyRotation"] is True and key["KeyPolicy"]["Statement"]
    kms = {(function, action)
           for function in of_type("AWS::Serverless::Function")
           for s in statements_of(function) for action in s["Action"]
           if action.startswith("kms:")
           and s["Resource"] == {"Fn::GetAtt": ["WebhookSecretsKey", "Arn"]}}
    every_kms = {(function, action) for function in of_type("AWS::Serverless::Function")
                 for s in statements_of(function) for action in s["Action"]
                 if action.startswith("kms:")}
    assert kms == every_kms == {("CreateWebhookEndpointFunction", "kms:Encrypt"),
                                ("CreateWebhookEndpointFunction", "kms:Decrypt"),  # replays
                                ("DeliverWebhooksFunction", "kms:Decrypt")}


def test_the_local_stack_takes_the_retry_schedules_the_template_takes():
    from devstack.stack import parse_retry_delays

    assert parse_retry_delays(" 2, 4,8") == "2,4,8"
    for refused in ("", ",".join(["1"] * 10), "43201", "-1", "soon"):
        with pytest.raises(ValueError):
            parse_retry_delays(refused)
