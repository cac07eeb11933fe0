"""The layer's botocore keeps only the AWS services the functions call
(devstack/botocore_data.py; issue 11, cold start): a client made from the trimmed build
works for each of them, and every service our code names is one of them."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import botocore
import botocore.exceptions
import botocore.loaders
import botocore.session
import pytest

from devstack.botocore_data import SERVICES, trim_botocore_data
from devstack.stack import REPO_ROOT, build_is_fresh, sam_build

BOTOCORE_DATA = Path(botocore.__file__).parent / "data"
LAYER_SOURCE = REPO_ROOT / "layers" / "contacts_core"
# A client our code makes: contacts_core.aws.aws_client("sqs", …), boto3.client("s3", …)
CLIENT_CALL = re.compile(r"""(?:aws_client|\.client)\(\s*["']([a-z0-9-]+)["']""")


def _fake_build(root: Path, services: list[str]) -> Path:
    """A build directory whose layer ships botocore's data for ``services``."""
    data = root / "ContactsCoreLayer" / "python" / "botocore" / "data"
    for service in services:
        shutil.copytree(BOTOCORE_DATA / service, data / service)
    for name in ("endpoints.json", "partitions.json", "_retry.json",
                 "sdk-default-configuration.json"):
        shutil.copy(BOTOCORE_DATA / name, data / name)
    return data


def _endpoint_services(data: Path) -> set[str]:
    endpoints = json.loads((data / "endpoints.json").read_text())
    return {name for partition in endpoints["partitions"] for name in partition["services"]}


def test_trimming_keeps_the_services_we_call_and_nothing_else(tmp_path: Path) -> None:
    # Given a build whose botocore has two services we call and two we do not
    data = _fake_build(tmp_path, ["dynamodb", "sqs", "ec2", "lambda"])
    assert {"ec2", "lambda"} <= _endpoint_services(data)
    # When it is trimmed
    assert trim_botocore_data(tmp_path) == [data]
    # Then only the services we call are left, in the directory and in endpoints.json,
    # while botocore's shared files stay
    assert sorted(p.name for p in data.iterdir() if p.is_dir()) == ["dynamodb", "sqs"]
    assert _endpoint_services(data) <= SERVICES
    assert {"dynamodb", "sqs"} <= _endpoint_services(data)
    assert (data / "partitions.json").is_file() and (data / "_retry.json").is_file()
    # And trimming again changes nothing
    before = (data / "endpoints.json").read_bytes()
    trim_botocore_data(tmp_path)
    assert (data / "endpoints.json").read_bytes() == before


def test_every_service_our_code_makes_a_client_of_is_kept() -> None:
    named = {match for path in LAYER_SOURCE.rglob("*.py")
             for match in CLIENT_CALL.findall(path.read_text())}
    assert {"dynamodb", "sqs", "s3"} <= named  # the pattern finds our clients
    assert named <= SERVICES, f"add {sorted(named - SERVICES)} to devstack.botocore_data.SERVICES"


def test_the_trimmed_build_makes_a_client_of_every_kept_service() -> None:
    # Given the build output (make test builds it first)
    if not build_is_fresh(REPO_ROOT):
        sam_build(REPO_ROOT)
    layer = REPO_ROOT / ".aws-sam" / "build" / "ContactsCoreLayer" / "python"
    # Then its botocore holds only the kept services
    data = layer / "botocore" / "data"
    assert {p.name for p in data.iterdir() if p.is_dir()} == SERVICES
    # And a client of each, made the way contacts_core.aws makes them, resolves its endpoint
    probe = (
        "import sys, json, botocore.session\n"
        f"assert botocore.__file__.startswith({str(layer)!r}), botocore.__file__\n"
        "s = botocore.session.get_session()\n"
        "print(json.dumps({n: s.create_client(n, region_name='eu-west-1').meta.endpoint_url"
        f" for n in {sorted(SERVICES)!r}}}))\n")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(layer), "PYTHONDONTWRITEBYTECODE": "1",
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                         text=True, check=True)
    urls = json.loads(out.stdout)
    assert urls["dynamodb"] == "https://dynamodb.eu-west-1.amazonaws.com"
    assert urls["sqs"] == "https://sqs.eu-west-1.amazonaws.com"
    assert all("eu-west-1" in url for url in urls.values()), urls


def _documentation_dropped(model: object) -> object:
    """``model`` without any ``documentation`` key, except under ``clientContextParams``."""
    if isinstance(model, dict):
        return {key: (value if key == "clientContextParams" else _documentation_dropped(value))
                for key, value in model.items() if key != "documentation"}
    if isinstance(model, list):
        return [_documentation_dropped(value) for value in model]
    return model


def test_kept_service_models_ship_without_their_documentation(tmp_path: Path) -> None:
    # Given a build whose botocore has DynamoDB's and SQS's models as botocore ships them
    data = _fake_build(tmp_path, ["dynamodb", "sqs"])
    full = botocore.loaders.Loader().load_service_model("dynamodb", "service-2")
    # When it is trimmed (twice: a second run changes nothing)
    trim_botocore_data(tmp_path)
    slim_files = sorted(p.relative_to(data) for p in data.glob("*/*/service-2.json*"))
    trim_botocore_data(tmp_path)
    # Then each model is one plain service-2.json, a fraction of the size
    assert slim_files == sorted(p.relative_to(data) for p in data.glob("*/*/service-2.json*"))
    assert all(p.name == "service-2.json" for p in slim_files), slim_files
    dynamodb = next(data / p for p in slim_files if p.parts[0] == "dynamodb"
                    and p.parts[1] == "2012-08-10")
    slim = json.loads(dynamodb.read_text())
    assert len(dynamodb.read_bytes()) < len(json.dumps(full)) / 3
    # And it is botocore's model with only the documentation left out
    assert slim == _documentation_dropped(full)
    assert "documentation" in json.dumps(full["shapes"])
    # And a client made from it validates and serializes requests as before
    loader = botocore.loaders.Loader(extra_search_paths=[str(data)],
                                     include_default_search_paths=False)
    session = botocore.session.get_session()
    session.register_component("data_loader", loader)
    client: Any = session.create_client("dynamodb", region_name="eu-west-1",
                                        aws_access_key_id="testing",
                                        aws_secret_access_key="testing")
    get_item = client.meta.service_model.operation_model("GetItem")
    assert get_item.documentation == ""  # the slim model
    assert get_item.input_shape is not None and get_item.input_shape.members
    with pytest.raises(botocore.exceptions.ParamValidationError, match="TableName"):
        client.get_item(Key={"pk": {"S": "x"}})
