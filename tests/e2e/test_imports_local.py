"""Import jobs over the running local stack (issue 12): the CSV goes to moto's S3 through
the presigned URL, the bucket's notification (as template.yaml declares it) starts the
job, the queue runs it, ``contacts-import --async`` follows it, and the end is an
``import.completed`` webhook."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import requests

from contacts_cli.importer import import_csv_async
from devstack.receiver import WebhookReceiver

pytestmark = pytest.mark.e2e
ROWS = ("phone,country_code,first_name,last_name,tags\r\n"
        "082 123 4567,ZA,Sam,Mokoena,vip;gold\r\n"
        "+971501234567,,Ahmed,Hassan,\r\n"
        "not a phone,ZA,Nobody,,\r\n"
        "082 123 4567,ZA,Samuel,,\r\n")


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(port=0).start()
    yield receiver
    receiver.stop()


def test_an_uploaded_file_is_imported_and_announced(stack, receiver, tmp_path):
    # Given an org with a webhook endpoint for import events
    org = stack.client(stack.mint_key(f"org_{uuid.uuid4().hex[:10]}"))
    assert org.post("/v1/webhook-endpoints", json={
        "url": receiver.url + "/", "events": ["import.completed"]}).status_code == 201
    # When a job is created and its file PUT to the upload URL, with nothing else done
    job = org.post("/v1/imports", json={}).json()
    assert job["status"] == "awaiting_upload"
    assert requests.put(job["upload_url"], data=ROWS.encode(), timeout=30).status_code == 200
    # Then the job runs by itself to its end, like bulk upsert of the rows in order
    deadline = time.monotonic() + 90
    while (done := org.get(f"/v1/imports/{job['id']}").json())["status"] not in (
            "completed", "failed"):
        assert time.monotonic() < deadline, done
        time.sleep(0.5)
    assert done["status"] == "completed", done
    assert (done["created"], done["updated"], done["failed"]) == (2, 1, 1)
    assert done["progress"] == {"rows_done": 4, "rows_total": 4, "percent": 100.0}
    errors = requests.get(done["errors_url"], timeout=30).text.splitlines()
    assert errors[0] == "line,reason" and errors[1].startswith("4,")
    # And the org's list of jobs shows it as GET does, errors link included
    listed = org.get("/v1/imports")
    assert listed.status_code == 200, listed.text
    (shown,) = listed.json()["data"]
    assert (shown["id"], shown["failed"]) == (job["id"], 1)
    assert requests.get(shown["errors_url"], timeout=30).text.splitlines() == errors
    sam = org.get("/v1/contacts", params={"search": "+27821234567"}).json()["data"]
    assert [(c["first_name"], c["tags"]) for c in sam] == [("Samuel", ["vip", "gold"])]
    # And subscribers hear import.completed with the job
    deadline = time.monotonic() + 60
    while not any(r.event["type"] == "import.completed" for r in receiver.received):
        assert time.monotonic() < deadline, "no import.completed webhook"
        time.sleep(0.2)
    (event,) = [r.event for r in receiver.received if r.event["type"] == "import.completed"]
    assert event["data"]["object"]["id"] == job["id"]

    # And the command-line importer drives the same kind of job with --async
    other = stack.client(stack.mint_key(f"org_{uuid.uuid4().hex[:10]}"))
    path = tmp_path / "people.csv"
    path.write_text(ROWS)
    key = other.headers["Authorization"].removeprefix("Bearer ")
    summary = import_csv_async(path, stack.base_url, key, wait=90, progress=False, poll=0.5)
    assert (summary.counts["created"], summary.counts["updated"]) == (2, 1)
    assert [line for line, _ in summary.failures] == [4]
