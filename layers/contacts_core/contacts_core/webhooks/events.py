"""From a DynamoDB stream record to the webhook events it stands for (SPEC §6).

* Contacts: INSERT → ``contact.created``, MODIFY → ``contact.updated`` with
  ``previous_attributes``, REMOVE → ``contact.deleted``. A MODIFY that changes nothing the
  API shows is not a contact event. A merge (SPEC §9.2) is one transaction: the target's
  MODIFY sets ``last_merged_id`` and becomes ``contact.merged`` (``data.object`` the
  target, ``data.merged_contact_id`` the source); the source's REMOVE gives no
  ``contact.deleted``, told by the merge record the same transaction wrote (the caller's
  ``merged_into`` lookup), but still its ``audience.contact_removed`` events, as the target
  gets ``audience.contact_added`` for the audiences it joined.
* Memberships are told from the same Contacts records: every membership change updates the
  contact's ``audience_ids`` in the transaction that adds or removes the membership item,
  so the difference between the old and new ``audience_ids`` gives
  ``audience.contact_added`` / ``audience.contact_removed`` (one per audience, in audience
  id order). All events about one contact thus come from one stream, in commit order
  (SPEC §6): a contact added to an audience and then deleted is seen added, then removed,
  then deleted. Within one record: ``contact.created``/``contact.updated`` first, then
  removals, then additions; on a REMOVE the removals come before ``contact.deleted``.
  ``data.object`` is ``{"audience_id", "contact_id", "added_at"}``; ``added_at`` is when
  the contact joined, kept on the contact as ``added_at#{audience_id}`` (falling back to
  the record's time when a writer did not keep it).
* Import jobs: ``import.completed`` / ``import.failed`` when a job reaches that status
  (SPEC §9.5; the event source mapping's filter passes only such MODIFY records).
* Audiences (``aud_…`` items; name guards are filtered out by the event source mapping):
  ``audience.created`` / ``audience.updated`` (name, description) / ``audience.deleted``;
  ``contact_count`` moves and the ``deleting`` flag are not events. The audience item is
  deleted exactly once, so there is exactly one ``audience.deleted``. Audience events keep
  their own order (FIFO group per audience); they are not ordered against the contacts'
  events, so ``audience.deleted`` may arrive before the last ``contact_removed`` of it.

An event's ``created_at`` is when its change was written (:func:`_written_at`). Event ids
are ``evt_`` + a ULID whose time is that moment and whose randomness is a SHA-256 of the
stream ARN, the record ``eventID`` and, for membership events, their type and audience:
every retry of the same record gives the same ids, and the events of one record differ.

Events are plain JSON-ready dicts in the shape of :class:`~contacts_core.webhooks.models.
WebhookEvent` (its schema; the tests validate what is built here against it), and contacts
are rendered by :func:`~contacts_core.contacts.output.contact_object`, the API's own rule:
a batch of contact records builds no pydantic model (issue 11, cold start).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ulid import ULID

from contacts_core.attribute_values import same_value
from contacts_core.contacts.output import contact_object
from contacts_core.contacts.records import ADDED_AT_PREFIX, MERGED_FROM
from contacts_core.dynamodb import deserialize
from contacts_core.ids import iso_timestamp

EVENT_PREFIX = "evt_"
Event = dict[str, Any]  # a WebhookEvent payload: id, type, created_at, organization_id, data
_NOT_CHANGES = {"version", "updated_at", "contact_count"}


def table_of(event_source_arn: str) -> str:
    """Table name in a stream ARN (``…:table/<name>/stream/<label>``)."""
    return event_source_arn.split(":table/", 1)[1].split("/stream/", 1)[0]


def event_id(event_source_arn: str, record_id: str, created: datetime) -> str:
    """Deterministic ``evt_<ULID>`` for one stream record."""
    digest = hashlib.sha256(f"{event_source_arn}|{record_id}".encode()).digest()
    millis = int(created.timestamp() * 1000)
    return EVENT_PREFIX + str(ULID.from_bytes(millis.to_bytes(6, "big") + digest[:10]))


def _audience(image: dict[str, Any]) -> dict[str, Any]:
    # Audience and import models are imported when such a record comes: most batches hold
    # contact records only, and a cold start then builds no other aggregate's models.
    from contacts_core.audiences.models import Audience, AudienceItem

    return Audience.from_item(AudienceItem(**image)).model_dump(mode="json")


def _membership(contact: dict[str, Any], audience_id: str, fallback: str) -> dict[str, Any]:
    return {"audience_id": audience_id, "contact_id": contact["contact_id"],
            "added_at": contact.get(ADDED_AT_PREFIX + audience_id) or fallback}


def _changed(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    return {k: old.get(k) for k in new
            if k not in _NOT_CHANGES and not same_value(old.get(k), new[k])}


def _image(raw: dict[str, Any]) -> dict[str, Any]:
    # DynamoDB Local writes an empty map as {} instead of {"M": {}} in stream images.
    return deserialize({k: v if v else {"M": {}} for k, v in raw.items()})


MergedInto = Callable[[str, str], str | None]  # (org_id, contact_id) → merge target or None


def webhook_events(record: dict[str, Any],
                   merged_into: MergedInto | None = None) -> list[Event]:
    """The events of one raw stream record, in the order to emit them; empty when it is
    none (bookkeeping, a guard, a count-only change, a table we do not publish).
    ``merged_into`` tells a merged contact's REMOVE from a delete (asked on REMOVE only;
    without it every REMOVE is a ``contact.deleted``).

    Raises:
        KeyError: the record lacks the images of a NEW_AND_OLD_IMAGES stream.
    """
    table = table_of(record["eventSourceARN"])
    stream = record["dynamodb"]
    new = _image(stream["NewImage"]) if "NewImage" in stream else None
    old = _image(stream["OldImage"]) if "OldImage" in stream else None
    image = new if new is not None else old
    assert image is not None
    make = _Maker(record, _written_at(stream, old, new), str(image["org_id"]))
    if table == os.environ.get("CONTACTS_TABLE"):
        merged = (merged_into or _never)(make.org_id, str(image["contact_id"])) \
            if record["eventName"] == "REMOVE" else None
        return _contact_events(record["eventName"], old, new, make, merged is not None)
    if table == os.environ.get("AUDIENCES_TABLE"):
        if not str(image.get("audience_id", "")).startswith("aud_"):
            return []
        event = _change_event("audience", _audience, record["eventName"], old, new, make)
        return [event] if event else []
    if table == os.environ.get("IMPORTS_TABLE"):
        return _import_events(old, new, make)
    return []


def _written_at(stream: dict[str, Any], old: dict[str, Any] | None,
                new: dict[str, Any] | None) -> datetime:
    """When the record's change was written: the new image's ``updated_at`` when the write
    set it (milliseconds, stamped just before the commit); a membership add that leaves
    ``updated_at`` alone, by the ``added_at#…`` stamp it wrote; else — a delete, a removal
    from an audience — the record's ``ApproximateCreationDateTime`` (whole seconds on AWS),
    but never before the last ``updated_at`` the images hold, so no event is dated before
    the change it follows."""
    def moment(stamp: Any) -> datetime | None:
        if isinstance(stamp, str):
            with contextlib.suppress(ValueError):
                return datetime.fromisoformat(stamp).astimezone(UTC)
        return None

    written, before = moment((new or {}).get("updated_at")), moment((old or {}).get("updated_at"))
    if written is not None and written != before:
        return written
    added = [moment(v) for k, v in (new or {}).items()
             if k.startswith(ADDED_AT_PREFIX) and (old or {}).get(k) != v]
    if latest := max((a for a in added if a is not None), default=None):
        return max(latest, written or latest)
    approximate = datetime.fromtimestamp(float(stream["ApproximateCreationDateTime"]), UTC)
    return max(m for m in (approximate, written, before) if m is not None)


def _import_events(old: dict[str, Any] | None, new: dict[str, Any] | None,
                   make: _Maker) -> list[Event]:
    """``import.completed`` / ``import.failed`` when a job reaches that status (once: the
    job never leaves it). ``data.object`` is the job as ``GET /v1/imports/{id}`` gives it,
    without ``errors_url`` (a presigned link would expire before late deliveries)."""
    from contacts_core.imports.models import TERMINAL, Import, ImportItem

    if new is None or new.get("status") not in TERMINAL or (old or {}).get("status") == \
            new.get("status"):
        return []
    job = Import.from_item(ImportItem(**new)).model_dump(mode="json", exclude={"errors_url"})
    return [make(f"import.{new['status']}", job)]


class _Maker:
    """Builds the events of one record with their deterministic ids."""

    def __init__(self, record: dict[str, Any], created: datetime, org_id: str) -> None:
        self.arn, self.record_id = record["eventSourceARN"], record["eventID"]
        self.created, self.org_id = created, org_id

    def __call__(self, kind: str, obj: dict[str, Any], previous: dict[str, Any] | None = None,
                 part: str = "", merged_id: str | None = None) -> Event:
        record_id = f"{self.record_id}|{kind}|{part}" if part else self.record_id
        data: dict[str, Any] = {"object": obj, "previous_attributes": previous}
        if merged_id is not None:
            data["merged_contact_id"] = merged_id
        return {"id": event_id(self.arn, record_id, self.created), "type": kind,
                "created_at": iso_timestamp(self.created), "organization_id": self.org_id,
                "data": data}


def _never(org_id: str, contact_id: str) -> None:
    return None


def _change_event(kind: str, render: Callable[[dict[str, Any]], dict[str, Any]], name: str,
                  old: dict[str, Any] | None, new: dict[str, Any] | None,
                  make: _Maker) -> Event | None:
    if name == "INSERT":
        assert new is not None
        return make(f"{kind}.created", render(new))
    if name == "REMOVE":
        assert old is not None
        return make(f"{kind}.deleted", render(old))
    assert old is not None and new is not None
    if new.get("deleting"):
        return None
    after = render(new)
    previous = _changed(render(old), after)
    return make(f"{kind}.updated", after, previous) if previous else None


def _contact_events(name: str, old: dict[str, Any] | None, new: dict[str, Any] | None,
                    make: _Maker, merged_away: bool) -> list[Event]:
    at = iso_timestamp(make.created)
    removed = [make("audience.contact_removed", _membership(old, a, at), part=a)
               for a in sorted(_audiences(old) - _audiences(new))] if old else []
    added = [make("audience.contact_added", _membership(new, a, at), part=a)
             for a in sorted(_audiences(new) - _audiences(old))] if new else []
    if name == "REMOVE":
        own = None if merged_away else _change_event("contact", contact_object, name, old,
                                                     new, make)
        return [*removed, *([own] if own else [])]
    if old and new and new.get(MERGED_FROM) and new.get(MERGED_FROM) != old.get(MERGED_FROM):
        after = contact_object(new)
        own = make("contact.merged", after, _changed(contact_object(old), after),
                   merged_id=str(new[MERGED_FROM]))
    else:
        own = _change_event("contact", contact_object, name, old, new, make)
    return [*([own] if own else []), *removed, *added]


def _audiences(image: dict[str, Any] | None) -> set[str]:
    return set(image.get("audience_ids") or ()) if image else set()


def object_key(event: Event) -> str:
    """What per-object ordering is kept for: the contact or audience the event is about."""
    obj = event["data"]["object"]
    return str(obj.get("contact_id") if event["type"].startswith("audience.contact_")
               else obj["id"])
