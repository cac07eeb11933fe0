"""template.yaml keeps SPEC §9.4 "Operating it" (observability and data protection).

Read raw (as written) and after the SAM transform (what CloudFormation deploys: the roles,
managed policies and function settings SAM generates), and linted by cfn-lint including
its informational checks.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import boto3
import pytest
from samcli.yamlhelper import parse_yaml_file
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

from contacts_core.observability import DEFAULT_NAMESPACE
from devstack.routes import TEMPLATE
from devstack.tables import create_table_request
from tests.support.iam import as_list

RAW = parse_yaml_file(str(TEMPLATE))
RESOURCES = RAW["Resources"]


def of_type(resources: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in resources.items() if v["Type"] == kind}


@cache
def deployed() -> dict[str, Any]:
    """The template after the SAM transform (code locations faked, no AWS call)."""
    template = copy.deepcopy(RAW)
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://bucket/code.zip"
        elif resource["Type"] == "AWS::Serverless::LayerVersion":
            resource["Properties"]["ContentUri"] = "s3://bucket/layer.zip"
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(
        region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"))
    return translator.translate(template, parameter_values={"CursorSecret": "x" * 32},
                                get_managed_policy_map=lambda: {})


def lambda_functions() -> dict[str, dict[str, Any]]:
    return {k: v["Properties"]
            for k, v in of_type(deployed()["Resources"], "AWS::Lambda::Function").items()}


def alarms() -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in of_type(RESOURCES, "AWS::CloudWatch::Alarm").items()}


def event_sources() -> dict[str, list[dict[str, Any]]]:
    """Functions with DynamoDB stream or SQS event sources → those events."""
    found: dict[str, list[dict[str, Any]]] = {}
    for name, resource in of_type(RESOURCES, "AWS::Serverless::Function").items():
        for event in (resource["Properties"].get("Events") or {}).values():
            if event["Type"] in ("DynamoDB", "SQS"):
                found.setdefault(name, []).append(event)
    return found


def dead_letter_queues() -> set[str]:
    """Queues where failures end: SQS redrive targets and event source on-failure targets."""
    queues = {q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
              for q in of_type(RESOURCES, "AWS::SQS::Queue").values()
              if "RedrivePolicy" in q["Properties"]}
    for events in event_sources().values():
        for event in events:
            failure = event["Properties"].get("DestinationConfig", {}).get("OnFailure")
            if failure:
                queues.add(failure["Destination"]["Fn::GetAtt"][0])
    return queues


# ---------------------------------------------------------------- logs
def test_every_function_logs_to_a_log_group_with_the_retention_parameter():
    # Given the deployed functions and the retention parameter
    retention = RAW["Parameters"]["LogRetentionInDays"]
    assert retention["Default"] in retention["AllowedValues"]
    functions = lambda_functions()
    assert len(functions) == len(of_type(RESOURCES, "AWS::Serverless::Function"))
    # Then each one's LoggingConfig names a log group of the template with that retention
    for name, props in functions.items():
        group = props["LoggingConfig"]["LogGroup"]["Ref"]
        assert RESOURCES[group]["Type"] == "AWS::Logs::LogGroup", name
        assert RESOURCES[group]["Properties"]["RetentionInDays"] == {
            "Ref": "LogRetentionInDays"}, name


def test_http_api_access_logs_are_json_with_request_route_status_latency_and_org():
    # Given the HTTP API's access log settings
    settings = RESOURCES["ContactsApi"]["Properties"]["AccessLogSettings"]
    group = settings["DestinationArn"]["Fn::GetAtt"][0]
    assert RESOURCES[group]["Type"] == "AWS::Logs::LogGroup"
    assert RESOURCES[group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionInDays"}
    # When the format is read as the JSON each line will be
    line = json.loads(settings["Format"])
    # Then it names the request, route, status, latency and the authorizer's org
    values = set(line.values())
    assert {"$context.requestId", "$context.routeKey", "$context.status",
            "$context.responseLatency", "$context.authorizer.org_id"} <= values
    assert line["org_id"] == "$context.authorizer.org_id"


# ---------------------------------------------------------------- traces and metrics
def test_tracing_is_active_and_metrics_have_a_namespace_in_every_function():
    for name, props in lambda_functions().items():
        assert props["TracingConfig"] == {"Mode": "Active"}, name
        env = props["Environment"]["Variables"]
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == DEFAULT_NAMESPACE, name
        assert env["POWERTOOLS_SERVICE_NAME"], name
        assert "POWERTOOLS_TRACE_DISABLED" not in env, name  # off only locally


# ---------------------------------------------------------------- alarms
def test_every_alarm_notifies_the_alarm_topic_on_alarm_and_recovery():
    assert RESOURCES["AlarmTopic"]["Type"] == "AWS::SNS::Topic"
    assert alarms()
    for name, props in alarms().items():
        assert props["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
        assert props["OKActions"] == [{"Ref": "AlarmTopic"}], name
        assert props["TreatMissingData"] == "notBreaching", name


def test_the_email_subscription_exists_only_when_an_address_is_given():
    (subscription,) = of_type(RESOURCES, "AWS::SNS::Subscription").values()
    assert subscription["Properties"]["TopicArn"] == {"Ref": "AlarmTopic"}
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}
    assert RAW["Parameters"]["AlarmEmail"]["Default"] == ""
    assert RAW["Conditions"][subscription["Condition"]] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}


def alarm_on(namespace: str, metric: str, dimension: tuple[str, Any] | None) -> dict[str, Any]:
    def on_dimension(alarm: dict[str, Any]) -> bool:
        if dimension is None:
            return not alarm.get("Dimensions")
        return {"Name": dimension[0], "Value": dimension[1]} in alarm.get("Dimensions", [])

    matching = [a for a in alarms().values() if a["Namespace"] == namespace
                and a["MetricName"] == metric and on_dimension(a)]
    assert len(matching) == 1, (namespace, metric, dimension)
    return matching[0]


@pytest.mark.parametrize("queue", sorted(dead_letter_queues()))
def test_every_dead_letter_queue_alarms_on_its_first_message(queue):
    alarm = alarm_on("AWS/SQS", "ApproximateNumberOfMessagesVisible",
                     ("QueueName", {"Fn::GetAtt": [queue, "QueueName"]}))
    assert alarm["Statistic"] == "Maximum"
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["Threshold"] <= 1


def test_every_dead_letter_queue_is_found():
    # the webhook DLQ and the import DLQ (redrive) and the stream on-failure queue are the
    # three places failures end; each is alarmed by the test above
    for queue in ("WebhookDeliveryQueue", "ImportQueue"):
        redrive = RESOURCES[queue]["Properties"]["RedrivePolicy"]
        assert redrive["deadLetterTargetArn"]["Fn::GetAtt"][0] in dead_letter_queues()
    assert len(dead_letter_queues()) == 3


@pytest.mark.parametrize("function", sorted(
    f for f, events in event_sources().items() if any(e["Type"] == "DynamoDB" for e in events)))
def test_every_stream_consumer_alarms_on_its_iterator_age(function):
    alarm = alarm_on("AWS/Lambda", "IteratorAge", ("FunctionName", {"Ref": function}))
    assert alarm["Statistic"] == "Maximum"
    assert 0 < alarm["Threshold"] <= 15 * 60 * 1000  # milliseconds


def test_api_5xx_and_lambda_throttles_are_alarmed():
    five_xx = alarm_on("AWS/ApiGateway", "5xx", ("ApiId", {"Ref": "ContactsApi"}))
    assert (five_xx["Statistic"], five_xx["Threshold"]) == ("Sum", 1)
    throttles = alarm_on("AWS/Lambda", "Throttles", None)
    assert (throttles["Statistic"], throttles["Threshold"]) == ("Sum", 1)


# ---------------------------------------------------------------- data protection
@pytest.mark.parametrize("table", sorted(of_type(RESOURCES, "AWS::DynamoDB::Table")))
def test_tables_are_retained_and_deletion_protected(table):
    resource = RESOURCES[table]
    assert resource["DeletionPolicy"] == resource["UpdateReplacePolicy"] == "Retain"
    assert resource["Properties"]["DeletionProtectionEnabled"] is True


@pytest.mark.parametrize("table", sorted(of_type(RESOURCES, "AWS::DynamoDB::Table")))
def test_the_local_stack_creates_tables_without_cloudformation_only_settings(table):
    request = create_table_request(table, RESOURCES[table]["Properties"])
    assert "DeletionProtectionEnabled" not in request
    assert request["KeySchema"] == RESOURCES[table]["Properties"]["KeySchema"]


def test_dead_letter_queues_are_retained():
    for queue in dead_letter_queues():
        assert RESOURCES[queue]["DeletionPolicy"] == "Retain", queue
        assert RESOURCES[queue]["UpdateReplacePolicy"] == "Retain", queue


def role_of(function: str) -> dict[str, Any]:
    """The deployed role of ``function`` (its ``Role`` after the transform)."""
    role = lambda_functions()[function]["Role"]["Fn::GetAtt"][0]
    return deployed()["Resources"][role]["Properties"]


def statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for p in role.get("Policies", []) for s in p["PolicyDocument"]["Statement"]]


@pytest.mark.parametrize("function", sorted(event_sources()))
def test_event_functions_have_no_account_wide_data_permissions(function):
    # Given the deployed role of a function fed by a stream or a queue
    role = role_of(function)
    # Then it carries no managed policy (SAM's AWSLambdaDynamoDBExecutionRole and
    # AWSLambdaSQSQueueExecutionRole grant every stream and queue of the account)
    assert not role.get("ManagedPolicyArns"), role.get("ManagedPolicyArns")
    # And no DynamoDB, SQS, KMS, S3 or logs action of it reaches a "*" resource
    for statement in statements(role):
        actions = as_list(statement["Action"])
        if any(a.split(":")[0] in ("dynamodb", "sqs", "logs", "kms", "s3") for a in actions):
            for resource in as_list(statement["Resource"]):
                assert isinstance(resource, dict) or "*" not in resource, (actions, resource)
        else:
            assert all(a.startswith("xray:") for a in actions), actions


@pytest.mark.parametrize("function", sorted(event_sources()))
def test_event_function_roles_grant_exactly_their_sources_and_failure_queues(function):
    # Given the role's grants as (action, resource) pairs
    grants = {(a, json.dumps(r, sort_keys=True)) for s in statements(role_of(function))
              for a in as_list(s["Action"]) for r in as_list(s["Resource"])}
    for event in event_sources()[function]:
        props = event["Properties"]
        # Then the mapping can read its own stream or queue …
        if event["Type"] == "DynamoDB":
            needed = [("dynamodb:GetRecords", props["Stream"]),
                      ("dynamodb:GetShardIterator", props["Stream"]),
                      ("dynamodb:DescribeStream", props["Stream"])]
        else:
            needed = [("sqs:ReceiveMessage", props["Queue"]), ("sqs:DeleteMessage", props["Queue"]),
                      ("sqs:GetQueueAttributes", props["Queue"])]
        # … and send a failed batch to its on-failure queue
        failure = props.get("DestinationConfig", {}).get("OnFailure")
        if failure:
            needed.append(("sqs:SendMessage", failure["Destination"]))
        for action, resource in needed:
            assert (action, json.dumps(resource, sort_keys=True)) in grants, (action, resource)


def test_functions_with_their_own_role_declare_no_policies_sam_would_ignore():
    # SAM drops Policies silently when Role is set: a statement added there would be lost
    for name, resource in of_type(RESOURCES, "AWS::Serverless::Function").items():
        if "Role" in resource["Properties"]:
            assert "Policies" not in resource["Properties"], name


def test_cfn_lint_with_informational_checks_finds_nothing():
    # When cfn-lint runs with the informational checks included
    lint = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), str(TEMPLATE),
         "--include-checks", "I"], capture_output=True, text=True, timeout=300, check=False)
    # Then it reports no finding (exceptions would be ignored explicitly in the template)
    assert (lint.returncode, lint.stdout.strip()) == (0, ""), lint.stdout + lint.stderr
