"""Export → import into a new org round-trips every contact (issue 3 outcome 6), over HTTP."""

from __future__ import annotations

import uuid

import pytest

from contacts_cli.importer import import_csv

pytestmark = pytest.mark.e2e

CONTACTS = [
    {"phone": "+27821234567", "email": "sam@example.com", "first_name": "Sam",
     "last_name": "Mokoena", "tags": ["vip", "a;b"], "attributes": {"loyalty_tier": "gold",
                                                                    "visits": 3, "ok": True},
     "consent": {"whatsapp": "opted_in"}, "language": "en-ZA"},
    {"phone": "+971501234567", "name": "Ahmed Hassan, Jr.", "suppressed": True,
     "attributes": {"note": "says \"hi\"\nthen leaves"}},
    {"email": "priya@example.com", "name": "Priya Sharma", "language": "hi-IN",
     "source": "import", "external_id": "=crm/42"},
    {"external_id": "hubspot-9001", "name": "Only An Id"},
]
COMPARED = ("first_name", "last_name", "name", "phone", "email", "external_id", "country_code",
            "language", "tags", "attributes", "channels", "consent", "suppressed", "source")


def org_client(stack):
    return stack.client(stack.mint_key(f"org_{uuid.uuid4().hex[:10]}"))


def everything(client):
    page = client.get("/v1/contacts", params={"limit": 100}).json()
    return sorted(({k: c[k] for k in COMPARED} for c in page["data"]),
                  key=lambda c: c["name"] or "")


def test_export_then_import_into_a_new_org_round_trips(stack, tmp_path):
    source, target = org_client(stack), org_client(stack)
    for body in CONTACTS:
        assert source.post("/v1/contacts", json=body).status_code == 201
    exported = source.get("/v1/contacts/export")
    assert exported.status_code == 200 and exported.headers["Content-Type"].startswith("text/csv")
    assert "Link" not in exported.headers
    assert exported.text.splitlines()[0].startswith("id,first_name,last_name,name,phone,email")
    csv_file = tmp_path / "contacts.csv"
    csv_file.write_bytes(exported.content)

    api_key = target.headers["Authorization"].removeprefix("Bearer ")
    summary = import_csv(csv_file, stack.base_url, api_key, progress=False)

    assert summary.counts["created"] == 4 and not summary.failures
    assert everything(target) == everything(source)


def test_importer_reports_failed_lines_and_why(stack, tmp_path):
    target = org_client(stack)
    csv_file = tmp_path / "people.csv"
    csv_file.write_text("phone,country_code,first_name,tags\n"
                        "082 123 4567,ZA,Sam,vip;gold\n"
                        "12,ZA,Short,\n"
                        "+27821234567,,Samuel,\n"
                        "+14155557890,US,Sarah,[not json\n")
    api_key = target.headers["Authorization"].removeprefix("Bearer ")
    summary = import_csv(csv_file, stack.base_url, api_key, chunk=2, progress=False)
    assert (summary.counts["created"], summary.counts["updated"], summary.counts["failed"]) == (
        1, 1, 2)
    assert [line for line, _ in summary.failures] == [3, 5]
    assert "phone" in dict(summary.failures)[3]
    assert "Samuel" in [c["first_name"] for c in
                        target.get("/v1/contacts").json()["data"]]
