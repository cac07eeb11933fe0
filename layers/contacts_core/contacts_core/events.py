"""From a DynamoDB stream record to the webhook event it stands for (SPEC §6).

* Contacts: INSERT → ``contact.created``, MODIFY → ``contact.updated`` with
  ``previous_attributes``, REMOVE → ``contact.deleted``. A MODIFY that changes nothing the
  API shows (membership bookkeeping) is not an event.
* Audiences (``aud_…`` items; name guards are filtered out by the event source mapping):
  ``audience.created`` / ``audience.updated`` (name, description) / ``audience.deleted``;
  ``contact_count`` moves are told by the membership events instead.
* AudienceMembers: INSERT → ``audience.contact_added``, REMOVE → ``audience.contact_removed``.

The event id is ``evt_`` + a ULID whose time is the record's ``ApproximateCreationDateTime``
and whose randomness is a SHA-256 of the stream ARN and record ``eventID``: every retry of
the same record gives the same id.
"""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime
from typing import Any

from ulid import ULID

from .audience_models import Audience, AudienceItem
from .ids import iso_timestamp
from .models import Contact, ContactItem
from .store import deserialize
from .webhook_models import EventData, WebhookEvent

EVENT_PREFIX = "evt_"
_NOT_CHANGES = {"version", "updated_at", "contact_count"}


def table_of(event_source_arn: str) -> str:
    """Table name in a stream ARN (``…:table/<name>/stream/<label>``)."""
    return event_source_arn.split(":table/", 1)[1].split("/stream/", 1)[0]


def event_id(event_source_arn: str, record_id: str, created: datetime) -> str:
    """Deterministic ``evt_<ULID>`` for one stream record."""
    digest = hashlib.sha256(f"{event_source_arn}|{record_id}".encode()).digest()
    millis = int(created.timestamp() * 1000)
    return EVENT_PREFIX + str(ULID.from_bytes(millis.to_bytes(6, "big") + digest[:10]))


def _contact(image: dict[str, Any]) -> dict[str, Any]:
    return Contact.from_item(ContactItem(**image)).model_dump(mode="json")


def _audience(image: dict[str, Any]) -> dict[str, Any]:
    return Audience.from_item(AudienceItem(**image)).model_dump(mode="json")


def _membership(image: dict[str, Any]) -> dict[str, Any]:
    return {"audience_id": image["audience_id"], "contact_id": image["contact_id"],
            "added_at": image.get("added_at")}


def _changed(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    return {k: old.get(k) for k in new if k not in _NOT_CHANGES and old.get(k) != new[k]}


def _image(raw: dict[str, Any]) -> dict[str, Any]:
    # DynamoDB Local writes an empty map as {} instead of {"M": {}} in stream images.
    return deserialize({k: v if v else {"M": {}} for k, v in raw.items()})


def webhook_event(record: dict[str, Any]) -> WebhookEvent | None:
    """The event for one raw stream record, or None when it is not one (bookkeeping, guard,
    a count-only change, a table we do not publish).

    Raises:
        KeyError: the record lacks the images of a NEW_AND_OLD_IMAGES stream.
    """
    table = table_of(record["eventSourceARN"])
    stream = record["dynamodb"]
    name = record["eventName"]
    new = _image(stream["NewImage"]) if "NewImage" in stream else None
    old = _image(stream["OldImage"]) if "OldImage" in stream else None
    image = new if new is not None else old
    assert image is not None
    if table == os.environ.get("CONTACTS_TABLE"):
        kind, render = "contact", _contact
    elif table == os.environ.get("AUDIENCES_TABLE"):
        if not str(image.get("audience_id", "")).startswith("aud_"):
            return None
        kind, render = "audience", _audience
    elif table == os.environ.get("MEMBERS_TABLE"):
        if name == "MODIFY":
            return None
        kind = "audience"
        name = "contact_added" if name == "INSERT" else "contact_removed"
        render = _membership
    else:
        return None
    previous = None
    if name == "MODIFY":
        assert old is not None and new is not None
        if new.get("deleting"):
            return None
        before, after = render(old), render(new)
        previous = _changed(before, after)
        if not previous:
            return None
    suffix = {"INSERT": "created", "MODIFY": "updated", "REMOVE": "deleted"}.get(name, name)
    created = datetime.fromtimestamp(float(stream["ApproximateCreationDateTime"]), UTC)
    return WebhookEvent(
        id=event_id(record["eventSourceARN"], record["eventID"], created),
        type=f"{kind}.{suffix}", created_at=iso_timestamp(created),
        organization_id=str(image["org_id"]),
        data=EventData(object=render(image), previous_attributes=previous))


def object_key(event: WebhookEvent) -> str:
    """What per-object ordering is kept for: the contact or audience the event is about."""
    obj = event.data.object
    return str(obj.get("contact_id") if event.type.startswith("audience.contact_")
               else obj["id"])
