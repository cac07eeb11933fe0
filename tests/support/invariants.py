"""The invariant checker (SPEC §3 I1, I2, I5) for one org, read straight from DynamoDB.

It uses its own boto3 client (never the hooked one) and strongly consistent reads where
DynamoDB offers them (table queries; scans of the guard and member tables are consistent
too), so it sees committed state only. Checked, per org:

* I1 – no phone, email or external id is held by two contacts;
* I2 – every guard (``{org}#phone#{e164}``, ``{org}#email#{addr}``,
  ``{org}#external_id#{id}``) points to a contact
  that holds that value (else an *orphan*), and every held value has its guard (else
  *unguarded*); a merge record (``{org}#merged#{source}``) names a source that is gone;
  merge records carry a TTL (``expires_at``) and guards never do;
* I5 – each audience's ``contact_count`` equals its AudienceMembers items; every
  membership item belongs to a live audience and a live contact listing it in
  ``audience_ids``, and every ``audience_ids`` entry has its membership item and audience;
* audience name guards point at a live audience of that name, and each audience has one;
* sizes (SPEC §7) – every contact is at most 16 KB as the API measures it
  (:func:`contacts_core.contacts.models.content_size`), and its ``content_bytes``, where
  kept, is at least that (the bound that lets a write skip reading it stays a bound);
* name words (SPEC §9.3) – the NameWords items of the org are exactly the words of its
  contacts' names (:func:`contacts_core.names.name_words`): none missing, none stale; and
  each contact's ``name_key`` (``name-index``) is :func:`contacts_core.names.name_key` of
  its name, so ``sort=name`` orders it as search folds it;
* import jobs (SPEC §9.5) – every job's counts add up to its ``rows_done``, which never
  exceeds ``rows_total``; a ``completed`` job did every row and has no part in progress;
  a job in progress (``running``) is *pending* work;
* *pending* work: audiences still flagged ``deleting`` (a multi-step delete not finished).

:func:`check` returns a :class:`Report`; :func:`assert_consistent` fails with every
violation listed.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer

from contacts_core.attribute_values import plain_number
from contacts_core.contacts.models import (
    IDENTITY_FIELDS,
    MAX_CONTACT_BYTES,
    ContactItem,
    content_size,
)
from contacts_core.contacts.records import MERGED_KEY
from contacts_core.names import audience_name_key, name_key, name_words

_plain = TypeDeserializer()
NAME_GUARD_PREFIX = "name#"


def _item(raw: dict[str, Any]) -> dict[str, Any]:
    return {k: _plain.deserialize(v) for k, v in raw.items()}


@dataclass
class Snapshot:
    """Everything of one org: contacts, identity guards, audiences, name guards, members."""

    contacts: dict[str, dict[str, Any]]
    guards: dict[str, str]  # identity key → contact_id
    audiences: dict[str, dict[str, Any]]
    name_guards: dict[str, str]  # audience_name_key → audience_id
    members: set[tuple[str, str]]  # (audience_id, contact_id)
    words: set[str]  # NameWords keys: "{word}#{contact_id}"
    imports: dict[str, dict[str, Any]] = field(default_factory=dict)  # import_id → job
    expiring: set[str] = field(default_factory=set)  # identity keys with a TTL (expires_at)


@dataclass
class Report:
    """Violations by kind (empty lists when the org is consistent)."""

    duplicates: list[str] = field(default_factory=list)
    orphan_guards: list[str] = field(default_factory=list)
    unguarded: list[str] = field(default_factory=list)
    counts: list[str] = field(default_factory=list)
    memberships: list[str] = field(default_factory=list)
    name_guards: list[str] = field(default_factory=list)
    words: list[str] = field(default_factory=list)
    sizes: list[str] = field(default_factory=list)
    imports: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    snapshot: Snapshot | None = None

    def violations(self, *, allow_pending: bool = False) -> list[str]:
        found = (self.duplicates + self.orphan_guards + self.unguarded + self.counts
                 + self.memberships + self.name_guards + self.words + self.sizes
                 + self.imports)
        return found if allow_pending else found + self.pending

    def summary(self) -> str:
        kinds = ("duplicates", "orphan_guards", "unguarded", "counts", "memberships",
                 "name_guards", "words", "sizes", "imports", "pending")
        return ", ".join(f"{k} {len(getattr(self, k))}" for k in kinds)


def _client() -> Any:
    return boto3.client("dynamodb")


def _query(client: Any, table: str, org_id: str) -> list[dict[str, Any]]:
    pages = client.get_paginator("query").paginate(
        TableName=table, ConsistentRead=True, KeyConditionExpression="org_id = :o",
        ExpressionAttributeValues={":o": {"S": org_id}})
    return [_item(raw) for page in pages for raw in page["Items"]]


def _scan(client: Any, table: str, **params: Any) -> list[dict[str, Any]]:
    pages = client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True,
                                                   **params)
    return [_item(raw) for page in pages for raw in page["Items"]]


def snapshot(org_id: str, client: Any | None = None) -> Snapshot:
    """Read the org's items from the six tables."""
    client = client or _client()
    contacts = {c["contact_id"]: c for c in _query(client, os.environ["CONTACTS_TABLE"], org_id)}
    identities = list(_scan(
        client, os.environ["IDENTITIES_TABLE"], FilterExpression="begins_with(#i, :p)",
        ExpressionAttributeNames={"#i": "identity"},
        ExpressionAttributeValues={":p": {"S": f"{org_id}#"}}))
    guards = {g["identity"]: g["contact_id"] for g in identities}
    expiring = {g["identity"] for g in identities if "expires_at" in g}
    audiences: dict[str, dict[str, Any]] = {}
    name_guards: dict[str, str] = {}
    for item in _query(client, os.environ["AUDIENCES_TABLE"], org_id):
        if item["audience_id"].startswith(NAME_GUARD_PREFIX):
            name_guards[item["audience_id"].removeprefix(NAME_GUARD_PREFIX)] = item["guard_for"]
        else:
            audiences[item["audience_id"]] = item
    members = {(m["audience_id"], m["contact_id"]) for m in _scan(
        client, os.environ["MEMBERS_TABLE"], FilterExpression="org_id = :o",
        ExpressionAttributeValues={":o": {"S": org_id}})}
    words = {w["word_key"] for w in _query(client, os.environ["NAME_WORDS_TABLE"], org_id)}
    imports = {j["import_id"]: j for j in _query(client, os.environ["IMPORTS_TABLE"], org_id)}
    return Snapshot(contacts, guards, audiences, name_guards, members, words, imports,
                    expiring)


def check(org_id: str, client: Any | None = None) -> Report:
    """Every invariant of ``org_id``; see the module docstring."""
    snap = snapshot(org_id, client)
    report = Report(snapshot=snap)
    holders: dict[tuple[str, str], list[str]] = defaultdict(list)
    for cid, contact in snap.contacts.items():
        for fld in IDENTITY_FIELDS:
            if contact.get(fld):
                holders[(fld, contact[fld])].append(cid)
    for (fld, value), cids in sorted(holders.items()):
        if len(cids) > 1:
            report.duplicates.append(f"{fld} {value} held by {sorted(cids)}")
        for cid in cids:
            if snap.guards.get(f"{org_id}#{fld}#{value}") != cid:
                report.unguarded.append(f"{cid} holds {fld} {value}, guard says "
                                        f"{snap.guards.get(f'{org_id}#{fld}#{value}')}")
    for identity, cid in sorted(snap.guards.items()):
        _, fld, value = identity.split("#", 2)
        if fld == MERGED_KEY:  # a merge record: its source must be gone (no half merge)
            if value in snap.contacts:
                report.orphan_guards.append(f"{identity}: {value} was merged into {cid} "
                                            "but still exists")
            if identity not in snap.expiring:
                report.orphan_guards.append(f"{identity}: a merge record that never expires")
            continue
        if identity in snap.expiring:  # TTL would delete it and leave its value unguarded
            report.orphan_guards.append(f"{identity}: a guard with a TTL (expires_at)")
        holder = snap.contacts.get(cid)
        if holder is None:
            report.orphan_guards.append(f"{identity} → {cid}, which does not exist")
        elif holder.get(fld) != value:
            report.orphan_guards.append(f"{identity} → {cid}, which holds {fld} "
                                        f"{holder.get(fld)}")
    members_of: dict[str, int] = defaultdict(int)
    for aud, cid in sorted(snap.members):
        members_of[aud] += 1
        if aud not in snap.audiences:
            report.memberships.append(f"member {cid} of deleted audience {aud}")
        member = snap.contacts.get(cid)
        if member is None:
            report.memberships.append(f"deleted contact {cid} still a member of {aud}")
        elif aud not in (member.get("audience_ids") or set()):
            report.memberships.append(f"{cid} is a member of {aud} but its audience_ids "
                                      "do not list it")
    for cid, contact in sorted(snap.contacts.items()):
        for aud in sorted(contact.get("audience_ids") or set()):
            if (aud, cid) not in snap.members:
                report.memberships.append(f"{cid} lists {aud} without a membership item")
            if aud not in snap.audiences:
                report.memberships.append(f"{cid} lists deleted audience {aud}")
    for aud, audience in sorted(snap.audiences.items()):
        count = int(audience.get("contact_count", 0))
        if count != members_of[aud]:
            report.counts.append(f"{aud} contact_count {count} != {members_of[aud]} members")
        if audience.get("deleting"):
            report.pending.append(f"{aud} is still flagged deleting")
        if snap.name_guards.get(audience_name_key(audience["name"])) != aud:
            report.name_guards.append(f"{aud} ({audience['name']!r}) has no name guard")
    for name, aud in sorted(snap.name_guards.items()):
        named = snap.audiences.get(aud)
        if named is None or audience_name_key(named["name"]) != name:
            report.name_guards.append(f"name guard {name!r} → {aud}, which is not that audience")
    expected = {f"{w}#{cid}" for cid, c in snap.contacts.items()
                for w in name_words(c.get("first_name"), c.get("last_name"), c.get("name"))}
    report.words += [f"missing name word {k}" for k in sorted(expected - snap.words)]
    report.words += [f"stale name word {k}" for k in sorted(snap.words - expected)]
    report.words += [f"{cid} name_key {c.get('name_key')!r} is not its name's"
                     for cid, c in sorted(snap.contacts.items())
                     if c.get("name_key") != name_key(c.get("name"), cid)]
    _check_sizes(snap, report)
    _check_imports(snap, report)
    return report


def _check_sizes(snap: Snapshot, report: Report) -> None:
    for cid, contact in sorted(snap.contacts.items()):
        plain: dict[str, Any] = dict(contact)
        if "attributes" in plain:
            plain["attributes"] = {a: plain_number(str(v)) if isinstance(v, Decimal) else v
                                   for a, v in plain["attributes"].items()}
        size = content_size(ContactItem.model_construct(**plain))  # as stored, even if odd
        bound = contact.get("content_bytes")
        if size > MAX_CONTACT_BYTES:
            report.sizes.append(f"{cid} is {size} bytes, over {MAX_CONTACT_BYTES}")
        if bound is not None and int(bound) < size:
            report.sizes.append(f"{cid} is {size} bytes, its content_bytes says {bound}")


def _check_imports(snap: Snapshot, report: Report) -> None:
    for import_id, job in sorted(snap.imports.items()):
        done, total = int(job.get("rows_done", 0)), job.get("rows_total")
        counted = sum(int(job.get(k, 0)) for k in ("created", "updated", "unchanged", "failed"))
        if counted != done:
            report.imports.append(f"{import_id}: counts add up to {counted}, rows_done {done}")
        if total is not None and done > int(total):
            report.imports.append(f"{import_id}: rows_done {done} > rows_total {total}")
        if job["status"] == "completed" and (total is None or done != int(total)
                                             or job.get("chunk_started_at")):
            report.imports.append(f"{import_id}: completed with {done}/{total} rows done")
        if job["status"] == "running":
            report.pending.append(f"{import_id} is still running")


def assert_consistent(org_id: str, *, allow_pending: bool = False) -> Snapshot:
    """Fail listing every violation in ``org_id``; returns the snapshot when consistent.

    ``allow_pending`` tolerates audiences still flagged ``deleting``."""
    report = check(org_id)
    problems = report.violations(allow_pending=allow_pending)
    assert not problems, f"invariants broken in {org_id} ({report.summary()}):\n  " + \
        "\n  ".join(problems)
    assert report.snapshot is not None
    return report.snapshot
