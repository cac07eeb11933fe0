"""The API's Contact object (SPEC §5) of a stored contact: the one rendering rule that both
the API (:meth:`contacts_core.contacts.models.Contact.from_item`) and the webhook events
(``data.object``, :mod:`contacts_core.webhooks.events`) use.

It imports no pydantic: the stream emitter renders contacts from stream images with it and
builds no model at all, which keeps pydantic (about 45 ms) out of its cold start (issue 11).
The ``Contact`` model stays the output's schema (OpenAPI); the tests check that every
object rendered here validates as it and dumps back unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

ConsentStatus = Literal["opted_in", "opted_out", "unknown"]
CHANNELS = ("whatsapp", "sms", "email", "voice")  # also the order of ``consent``'s keys


def default_consent() -> dict[str, ConsentStatus]:
    """Consent of a new contact: ``unknown`` on every channel."""
    return dict.fromkeys(CHANNELS, "unknown")


def contact_object(item: Mapping[str, Any]) -> dict[str, Any]:
    """The Contact object (JSON-ready, keys in the order of SPEC §5) of a stored contact.

    ``item``: a Contacts table item as plain values (a deserialized stream image, or a
    ``ContactItem``'s fields); its bookkeeping attributes are left out. Absent optional
    fields are ``null``, absent ``tags``/``attributes`` empty, a channel without consent
    ``unknown``, ``suppressed`` false and ``source`` ``"api"``, as ``ContactItem``'s defaults
    are; ``channels`` follow from which identifiers are present.

    Raises:
        KeyError: ``contact_id``, ``version``, ``created_at`` or ``updated_at`` is missing.
    """
    has_phone = item.get("phone") is not None
    consent = item.get("consent") or {}
    return {
        "id": item["contact_id"],
        **{field: item.get(field) for field in (
            "first_name", "last_name", "name", "phone", "email", "external_id",
            "country_code", "language")},
        "tags": list(item.get("tags") or ()),
        "attributes": dict(item.get("attributes") or {}),
        "channels": {"has_whatsapp": has_phone, "has_sms": has_phone, "has_voice": has_phone,
                     "has_email": item.get("email") is not None},
        "consent": {channel: consent.get(channel, "unknown") for channel in CHANNELS},
        "suppressed": item.get("suppressed", False),
        "source": item.get("source", "api"),
        "version": item["version"],
        "created_at": item["created_at"],
        "updated_at": item["updated_at"],
    }
