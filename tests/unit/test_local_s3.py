"""The local S3 of template.yaml (SPEC §9.5): the bucket, event types and key filter of
each ``Type: S3`` event as read for local delivery, valid local bucket names, and the
bucket references and S3 endpoint in the stack's state and env.json."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from samcli.yamlhelper import parse_yaml_file

from devstack.buckets import BUCKET_TYPE, bucket_definitions, bucket_name, s3_environment
from devstack.event_sources import mappings
from devstack.routes import TEMPLATE
from devstack.state import local_endpoints, local_references, sam_env_vars
from devstack.tables import load_template

RAW = parse_yaml_file(str(TEMPLATE))["Resources"]  # as CloudFormation reads it
S3_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def template_s3_events() -> dict[tuple[str, str], dict]:
    """``{(function, event name): Properties}`` of every ``Type: S3`` event, read raw."""
    return {(function, name): event["Properties"]
            for function, resource in RAW.items()
            if resource["Type"] == "AWS::Serverless::Function"
            for name, event in (resource["Properties"].get("Events") or {}).items()
            if event["Type"] == "S3"}


def test_the_upload_event_is_mapped_as_the_template_declares_it():
    declared = template_s3_events()
    assert set(declared) == {("StartImportFunction", "Upload")}
    local = {(m.function_id, m.event_id): m for m in mappings(TEMPLATE) if m.kind == "S3"}
    assert set(local) == set(declared)
    for key, props in declared.items():
        mapping = local[key]
        assert mapping.source == props["Bucket"]["Ref"] == "ImportsBucket"
        events = props["Events"]
        assert mapping.events == tuple([events] if isinstance(events, str) else events)
        assert mapping.events == ("s3:ObjectCreated:*",)
        rules = props["Filter"]["S3Key"]["Rules"]
        assert mapping.key_filter == tuple((r["Name"].lower(), r["Value"]) for r in rules)
        assert mapping.key_filter == (("prefix", "uploads/"),)
        assert mapping.max_retries == 2  # Lambda's default for asynchronous invocations


def test_s3_events_read_lists_suffixes_and_the_functions_retry_setting(tmp_path: Path):
    template = {
        "Transform": "AWS::Serverless-2016-10-31",
        "Resources": {
            "Files": {"Type": BUCKET_TYPE},
            "Fn": {"Type": "AWS::Serverless::Function", "Properties": {
                "Runtime": "python3.13", "Handler": "app.handler", "CodeUri": "fn/",
                "EventInvokeConfig": {"MaximumRetryAttempts": 0},
                "Events": {
                    "Both": {"Type": "S3", "Properties": {
                        "Bucket": {"Ref": "Files"},
                        "Events": ["s3:ObjectCreated:Put", "s3:ObjectRemoved:*"],
                        "Filter": {"S3Key": {"Rules": [
                            {"Name": "Prefix", "Value": "in/"},
                            {"Name": "suffix", "Value": ".csv"}]}}}},
                    "All": {"Type": "S3", "Properties": {
                        "Bucket": {"Ref": "Files"}, "Events": "s3:ObjectCreated:*"}}}}}}}
    path = tmp_path / "template.yaml"
    path.write_text(yaml.safe_dump(template))
    found = {m.event_id: m for m in mappings(path)}
    assert found["Both"].source == found["All"].source == "Files"
    assert found["Both"].events == ("s3:ObjectCreated:Put", "s3:ObjectRemoved:*")
    assert found["Both"].key_filter == (("prefix", "in/"), ("suffix", ".csv"))
    assert found["Both"].max_retries == 0
    assert found["All"].events == ("s3:ObjectCreated:*",) and found["All"].key_filter == ()


def test_every_template_bucket_has_a_valid_local_name():
    names = {lid: bucket_name(lid) for lid in bucket_definitions(load_template(TEMPLATE))}
    assert names == {"ImportsBucket": "importsbucket"}
    assert all(S3_NAME.match(name) for name in names.values())


@pytest.mark.parametrize("logical_id", ["A", "Ab", "X" * 200, "My_Bucket2"])
def test_any_logical_id_gives_a_valid_bucket_name(logical_id: str):
    assert S3_NAME.match(bucket_name(logical_id)), bucket_name(logical_id)


def test_state_and_env_json_resolve_buckets_and_point_s3_at_moto():
    moto = "http://127.0.0.1:5001"
    state = {"dynamodb_endpoint": "http://127.0.0.1:8000", "sqs_endpoint": moto,
             "queues": {"ImportQueue": f"{moto}/123456789012/ImportQueue.fifo"},
             "buckets": {"ImportsBucket": "importsbucket"}}
    assert local_references(state)["ImportsBucket"] == "importsbucket"
    assert local_endpoints(state)["AWS_ENDPOINT_URL_S3"] == moto
    assert s3_environment(moto) == {"AWS_ENDPOINT_URL_S3": moto, "S3_ENDPOINT_URL": moto}
    functions = {"RunImportFunction": {"IMPORTS_BUCKET": "ImportsBucket",
                                       "IMPORT_QUEUE_URL": "ImportQueue",
                                       "S3_ENDPOINT_URL": ""}}
    document = sam_env_vars(functions, state, host="host.docker.internal")
    run = document["RunImportFunction"]
    assert run["IMPORTS_BUCKET"] == "importsbucket"
    assert run["S3_ENDPOINT_URL"] == document["Parameters"]["S3_ENDPOINT_URL"] == \
        "http://host.docker.internal:5001"
