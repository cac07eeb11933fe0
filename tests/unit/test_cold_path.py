"""What each handler's import leaves out of its cold start (issue 11; README "Cold start").

Timing is the benchmark's job (``make bench-cold-start``); these check the import graph
the benchmark's numbers rest on, in a fresh interpreter per function, so a module that
slips back onto a cold path fails here rather than only showing as a slower ratio.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

IMPORT_AND_LIST = """
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import app
print(json.dumps(sorted(sys.modules)))
"""

# function directory → modules its import must not load
LEFT_OUT = {
    "authorizer": ["boto3", "pydantic", "aws_lambda_powertools.utilities.data_classes",
                   "contacts_core.contacts.models"],
    "get_contact": ["boto3", "contacts_core.contacts.requests", "phonenumbers", "email_validator",
                    "ulid"],
    "list_contacts": ["boto3", "contacts_core.contacts.requests", "phonenumbers",
                      "email_validator"],
    "emit_webhooks": ["boto3", "pydantic", "contacts_core.contacts.requests",
                      "contacts_core.audiences.models", "contacts_core.imports.models"],
    # boto3 (s3transfer, multiprocessing) is for S3's managed transfers (imports) only
    "upsert_contact": ["boto3"],
}


# The emitter's work on a batch of contact records, short of AWS: the events of each record
# and the message bodies of their deliveries.
EMIT_CONTACT_RECORDS = """
import json, sys
from contacts_core.webhooks.events import object_key, webhook_events
from contacts_core.webhooks.queue import OutgoingDelivery
with open(sys.argv[3]) as f:
    records = json.load(f)["Records"]
bodies = [OutgoingDelivery(e["organization_id"], "ep_1", e, object_key(e)).body()
          for r in records for e in webhook_events(r)]
assert len(bodies) == 5, bodies
"""


def _imported(function: str, then: str = "", *args: str) -> set[str]:
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_TRACE_DISABLED": "true",
           "CONTACTS_TABLE": "ContactsTable"}
    script = IMPORT_AND_LIST.replace("print(", then + "\nprint(")
    out = subprocess.run(
        [sys.executable, "-c", script, str(REPO / "functions" / function),
         str(REPO / "layers" / "contacts_core"), *args],
        capture_output=True, text=True, env=env, check=True)
    return set(json.loads(out.stdout))


@pytest.mark.parametrize("function", sorted(LEFT_OUT))
def test_importing_the_handler_leaves_out_what_its_requests_do_not_need(function: str) -> None:
    # When a fresh interpreter imports the handler, as a Lambda cold start does
    imported = _imported(function)
    # Then none of the modules its first request does not need are loaded
    assert "app" in imported
    assert sorted(m for m in LEFT_OUT[function] if m in imported) == []


def test_the_upsert_builds_its_request_models() -> None:
    # The check above can fail: a function that takes a contact body does import them
    assert "contacts_core.contacts.requests" in _imported("upsert_contact")


def test_the_emitter_builds_no_model_for_a_batch_of_contact_records() -> None:
    # Given the sample stream (a contact created, updated, added to an audience, deleted)
    # When a fresh emitter turns it into events and delivery messages
    imported = _imported("emit_webhooks", EMIT_CONTACT_RECORDS,
                         str(REPO / "events" / "dynamodb_stream_contacts.json"))
    # Then pydantic was never imported: contacts render by the API's plain rule
    assert "contacts_core.webhooks.events" in imported
    assert "pydantic" not in imported
