"""The local buckets of template.yaml (SPEC §9.5): valid local bucket names, and the
bucket references and S3 endpoint in the stack's state and env.json."""

from __future__ import annotations

import re

import pytest

from devstack.buckets import bucket_definitions, bucket_name, s3_environment
from devstack.routes import TEMPLATE
from devstack.state import local_endpoints, local_references, sam_env_vars
from devstack.tables import load_template

S3_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


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
