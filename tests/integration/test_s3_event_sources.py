"""Bucket notifications reach their function as S3 invokes Lambda (SPEC §9.5): the
template's buckets on a moto server, the template's ``Type: S3`` event wired to a local
poller, objects PUT to presigned URLs as a client does; only events that pass the
template's filter are delivered, each exactly as S3 describes it, and a failing function
is retried, then the event dropped after 3 attempts (Lambda's asynchronous invocation)."""

from __future__ import annotations

import hashlib
import time
from dataclasses import replace
from typing import Any

import pytest
import requests

from devstack.buckets import create_buckets, s3_client
from devstack.event_sources import FunctionError, Mapping, S3EventPoller, mappings
from devstack.routes import TEMPLATE


@pytest.fixture(scope="module")
def endpoint(separate_moto: str) -> str:
    """The module's own moto server."""
    return separate_moto


@pytest.fixture(scope="module")
def bucket(endpoint: str) -> str:
    """The template's imports bucket, created there as the local stack creates it."""
    created = create_buckets(TEMPLATE, endpoint)
    assert created == {"ImportsBucket": "importsbucket"}
    assert create_buckets(TEMPLATE, endpoint) == created  # idempotent
    return created["ImportsBucket"]


@pytest.fixture
def upload_mapping() -> Mapping:
    (mapping,) = [m for m in mappings(TEMPLATE) if m.kind == "S3"]
    return mapping


class Function:
    """A stand-in function: records each invocation and answers per ``script``."""

    def __init__(self, script=None) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.script = script or (lambda event, n: None)

    def invoke(self, function_id: str, event: dict[str, Any]) -> dict[str, Any] | None:
        self.calls.append((function_id, event))
        return self.script(event, len(self.calls))


def put_presigned(endpoint: str, bucket: str, key: str, body: bytes) -> str:
    """PUT ``body`` to a presigned URL as a client on this machine does; returns the ETag."""
    url = s3_client(endpoint).generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=300)
    assert url.startswith(f"{endpoint}/{bucket}/")  # path-style, reachable on 127.0.0.1
    response = requests.put(url, data=body, timeout=10)
    assert response.status_code == 200, response.text
    return str(response.headers["ETag"]).strip('"')


def drain(poller: S3EventPoller) -> None:
    while poller.poll():
        pass


def remaining(poller: S3EventPoller) -> int:
    attributes = poller.sqs.get_queue_attributes(QueueUrl=poller.queue_url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return sum(int(v) for v in attributes.values())


def test_an_upload_under_the_prefix_is_delivered_once_with_its_s3_event(
        endpoint, bucket, upload_mapping, org_id):
    # Given the template's upload event wired to a stand-in StartImportFunction
    function = Function()
    poller = S3EventPoller(upload_mapping, bucket, endpoint, function.invoke,
                           retry_delays=(0,))
    drain(poller)  # the bucket's s3:TestEvent, never delivered
    assert function.calls == []
    # When a client PUTs a CSV under uploads/ and the errors file is written outside it
    body = b"email,first_name\nsam@example.com,Sam\n"
    key = f"uploads/{org_id}/imp_01.csv"
    etag = put_presigned(endpoint, bucket, key, body)
    put_presigned(endpoint, bucket, f"errors/{org_id}/imp_01.csv", b"x")
    drain(poller)
    # Then the function got exactly one event: the upload, as S3 describes it
    assert etag == hashlib.md5(body).hexdigest()
    ((function_id, event),) = function.calls
    assert function_id == "StartImportFunction"
    (record,) = event["Records"]
    assert record["eventSource"] == "aws:s3" and record["awsRegion"] == "us-east-1"
    assert record["eventName"] == "ObjectCreated:Put"
    assert record["s3"]["bucket"] == {"name": "importsbucket", "arn": "arn:aws:s3:::importsbucket"}
    assert record["s3"]["object"] == {"key": key, "size": len(body), "eTag": etag}
    assert remaining(poller) == 0


def test_object_keys_are_url_encoded_as_s3_encodes_them(endpoint, bucket, upload_mapping,
                                                         org_id):
    function = Function()
    poller = S3EventPoller(upload_mapping, bucket, endpoint, function.invoke,
                           retry_delays=(0,))
    put_presigned(endpoint, bucket, f"uploads/{org_id}/my list (1).csv", b"a")
    drain(poller)
    ((_, event),) = function.calls
    assert event["Records"][0]["s3"]["object"]["key"] == f"uploads/{org_id}/my+list+%281%29.csv"


def test_a_failing_function_is_retried_then_the_event_dropped_after_3_attempts(
        endpoint, bucket, upload_mapping, org_id):
    def fail(event, n):
        raise FunctionError("boom")

    function, log = Function(fail), []
    poller = S3EventPoller(upload_mapping, bucket, endpoint, function.invoke,
                           log=log.append, retry_delays=(0,))
    key = f"uploads/{org_id}/imp_02.csv"
    put_presigned(endpoint, bucket, key, b"email\n")
    drain(poller)
    assert len(function.calls) == 3  # the first attempt and Lambda's 2 retries
    assert all(event == function.calls[0][1] for _, event in function.calls)
    (line,) = log
    assert "dropped after 3 attempts" in line and key in line and "boom" in line
    assert remaining(poller) == 0


def test_a_retry_waits_its_delay_and_a_success_ends_the_retries(endpoint, bucket,
                                                                 upload_mapping, org_id):
    def fail_once(event, n):
        if n == 1:
            raise FunctionError("first attempt fails")

    function, log = Function(fail_once), []
    poller = S3EventPoller(upload_mapping, bucket, endpoint, function.invoke,
                           log=log.append, retry_delays=(1,))
    put_presigned(endpoint, bucket, f"uploads/{org_id}/imp_03.csv", b"a")
    drain(poller)
    assert len(function.calls) == 1  # the retry waits its delay
    time.sleep(1.2)
    drain(poller)
    assert len(function.calls) == 2 and log == []
    assert remaining(poller) == 0


def test_two_notifications_of_one_bucket_keep_each_other(endpoint, bucket, upload_mapping,
                                                         org_id):
    # Given a second, hypothetical event on the same bucket (text files, any prefix)
    uploads, texts = Function(), Function()
    S3EventPoller(upload_mapping, bucket, endpoint, uploads.invoke)
    other = replace(upload_mapping, function_id="TextFunction", event_id="Texts",
                    key_filter=(("suffix", ".txt"),))
    text_poller = S3EventPoller(other, bucket, endpoint, texts.invoke)
    upload_poller = S3EventPoller(upload_mapping, bucket, endpoint,
                                  uploads.invoke)  # re-wired: replaces only its own
    drain(upload_poller)
    drain(text_poller)
    # When one object matches both and one only the second
    put_presigned(endpoint, bucket, f"uploads/{org_id}/notes.txt", b"a")
    put_presigned(endpoint, bucket, f"other/{org_id}/notes.txt", b"b")
    drain(upload_poller)
    drain(text_poller)
    # Then each function got what its filter lets through
    def keys(function: Function) -> list[str]:
        return [e["Records"][0]["s3"]["object"]["key"] for _, e in function.calls]

    assert keys(uploads) == [f"uploads/{org_id}/notes.txt"]
    assert keys(texts) == [f"uploads/{org_id}/notes.txt", f"other/{org_id}/notes.txt"]
    config = s3_client(endpoint).get_bucket_notification_configuration(
        Bucket=bucket)
    assert len(config["QueueConfigurations"]) == 2


# ---------------------------------------------------------------- the in-process session

def test_in_process_functions_find_their_bucket_and_queue_on_the_session_moto(
        pipeline, buckets, sqs, org_id):
    import os

    import boto3
    from botocore.config import Config

    # Given the session's environment, as the import functions read it
    assert os.environ["IMPORTS_BUCKET"] == buckets["ImportsBucket"] == "importsbucket"
    assert os.environ["IMPORT_QUEUE_URL"] == sqs["ImportQueue"]
    endpoint = os.environ["AWS_ENDPOINT_URL_S3"]
    assert os.environ["S3_ENDPOINT_URL"] == endpoint == sqs["endpoint"]
    # When a function's own client presigns an upload and a client PUTs to it
    s3 = boto3.client("s3", endpoint_url=os.environ.get("S3_ENDPOINT_URL") or None,
                      config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
    key = f"uploads/{org_id}/imp_session.csv"
    url = s3.generate_presigned_url("put_object", ExpiresIn=60, Params={
        "Bucket": os.environ["IMPORTS_BUCKET"], "Key": key})
    assert requests.put(url, data=b"email\n", timeout=10).status_code == 200
    # Then the object is there, and the pipeline has the template's upload event wired
    assert s3.get_object(Bucket=os.environ["IMPORTS_BUCKET"], Key=key)["Body"].read() == b"email\n"
    assert [(u.mapping.function_id, u.bucket) for u in pipeline.uploads] == [
        ("StartImportFunction", "importsbucket")]
