"""CSV rows ↔ contacts: every field survives, quoting included."""

from __future__ import annotations

import csv
import io

from contacts_core.csv_format import COLUMNS, contact_row, upsert_body, write_rows
from contacts_core.models import Contact


def test_row_round_trips_to_an_upsert_body():
    contact = Contact.model_validate({
        "id": "con_1", "first_name": "Zoë", "last_name": None, "name": "Zoë, \"Z\"",
        "phone": "+27821234567", "email": None, "country_code": "ZA", "language": "en-ZA",
        "tags": ["a;b", "c"], "attributes": {"n": 1.5, "t": True, "s": "x\ny"},
        "channels": {"has_whatsapp": True, "has_sms": True, "has_voice": True,
                     "has_email": False},
        "consent": {"whatsapp": "opted_in", "sms": "unknown", "email": "unknown",
                    "voice": "opted_out"},
        "suppressed": True, "source": "api", "version": 2,
        "created_at": "2026-05-22T10:30:00.000Z", "updated_at": "2026-05-22T10:30:00.000Z"})
    text = write_rows([contact_row(contact)], header=True)
    (row,) = list(csv.DictReader(io.StringIO(text)))
    assert list(row) == COLUMNS
    body = upsert_body(row)
    assert body == {"first_name": "Zoë", "name": "Zoë, \"Z\"", "phone": "+27821234567",
                    "country_code": "ZA", "language": "en-ZA", "tags": ["a;b", "c"],
                    "attributes": {"n": 1.5, "t": True, "s": "x\ny"},
                    "consent": {"whatsapp": "opted_in", "sms": "unknown", "email": "unknown",
                                "voice": "opted_out"},
                    "suppressed": True, "source": "api"}


def test_hand_written_tags_may_be_semicolon_separated():
    assert upsert_body({"email": "a@b.co", "tags": "vip; gold ;"})["tags"] == ["vip", "gold"]
