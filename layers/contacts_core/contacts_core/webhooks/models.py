"""Pydantic models of webhook endpoints and events (SPEC §5 webhook endpoints, §6)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    StringConstraints,
    model_validator,
)

from contacts_core.base_model import Model, PlainText, SchemaKeywords, without_null
from contacts_core.contacts.models import FieldRuleError
from contacts_core.text import blank_is_null

EventType = Literal[
    "contact.created", "contact.updated", "contact.deleted", "contact.merged",
    "audience.created", "audience.updated", "audience.deleted",
    "audience.contact_added", "audience.contact_removed",
    "import.completed", "import.failed",
]
EVENT_TYPES: tuple[str, ...] = EventType.__args__  # type: ignore[attr-defined]
Subscription = Literal[EventType, "*"]
# Not stripped: a URL with whitespace or control characters is refused whole (webhook_urls).
Url = Annotated[StrictStr, StringConstraints(strip_whitespace=False),
                Field(min_length=8, max_length=2048),
                SchemaKeywords(format="uri", pattern="^https://[!-~]+$")]

_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _events_valid(events: list[Subscription] | None) -> list[Subscription] | None:
    """``events`` without repeats (first occurrence kept), or FieldRuleError."""
    if events is None:
        return None
    unique = list(dict.fromkeys(events))
    if "*" in unique and len(unique) > 1:
        raise FieldRuleError("events", '"*" subscribes to everything; give it alone')
    return unique


def _subscriptions_schema(schema: dict[str, Any]) -> None:
    """``json_schema_extra`` of ``events``: either ``"*"`` alone (repeats allowed, as
    :func:`_events_valid` drops them) or event types, instead of one enum of both that
    called ``["*", "contact.created"]`` valid; no ``null`` (:func:`without_null`)."""
    without_null(schema)
    bounds = {k: schema.pop(k) for k in ("minItems", "maxItems") if k in schema}
    schema.pop("items", None)
    schema.pop("type", None)
    schema["anyOf"] = [{"type": "array", "items": {"const": "*"}, **bounds},
                       {"type": "array", "items": {"enum": list(EVENT_TYPES)}, **bounds}]


def _every_event() -> list[Subscription]:
    return ["*"]


# a blank description is none (``null``), as for contact names and audience descriptions
Description = Annotated[Annotated[StrictStr, Field(max_length=512),
                                  PlainText()] | None,
                        AfterValidator(blank_is_null)]


class EndpointCreate(Model):
    """Body of ``POST /v1/webhook-endpoints``. ``events`` lists event types or ``["*"]``.

    ``events`` left out subscribes to every event type (``["*"]``), as a Svix endpoint
    without ``filterTypes`` does; an empty list is refused (an endpoint that can never
    receive anything is a mistake, not a choice). An org has at most 20 endpoints
    (``MAX_ENDPOINTS``): the 21st create is a 400 naming ``url``.
    """

    model_config = _STRICT

    url: Url
    events: list[Subscription] = Field(default_factory=_every_event, min_length=1,
                                       max_length=len(EVENT_TYPES),
                                       json_schema_extra=_subscriptions_schema)
    description: Description = None
    enabled: StrictBool = True

    @model_validator(mode="after")
    def _check_events(self) -> Self:
        self.events = _events_valid(self.events) or []
        return self


class EndpointPatch(Model):
    """Body of ``PATCH /v1/webhook-endpoints/{id}``; re-enabling clears ``disabled_reason``;
    ``{}`` is a 400 ("No valid fields to update"), as the document's ``minProperties``
    says."""

    model_config = ConfigDict(**_STRICT, json_schema_extra={"minProperties": 1})

    url: Url | None = Field(None, json_schema_extra=without_null)
    events: list[Subscription] | None = Field(None, min_length=1, max_length=len(EVENT_TYPES),
                                              json_schema_extra=_subscriptions_schema)
    description: Description = None
    enabled: StrictBool | None = Field(None, json_schema_extra=without_null)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.events is not None:
            self.events = _events_valid(self.events)
        for name in ("url", "events", "enabled"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise FieldRuleError(name, "cannot be null")
        return self


class EndpointItem(Model):
    """An endpoint as stored (WebhookEndpoints table, PK ``org_id``, SK ``endpoint_id``).

    ``secret_ciphertext`` is the base64 KMS ciphertext of the endpoint's ``whsec_`` secret
    (the Standard Webhooks key), encrypted with the context ``{org_id, endpoint_id}``
    (:mod:`contacts_core.keys`); the clear secret is shown only in the create response.
    ``secret`` is the clear secret of items written before secrets were encrypted: still
    read (and used to sign), never written.
    """

    model_config = ConfigDict(extra="ignore")

    org_id: str
    endpoint_id: str
    url: str
    events: list[str]
    secret_ciphertext: str | None = None
    secret: str | None = None
    enabled: bool = True
    description: str | None = None
    disabled_reason: str | None = None
    created_at: str
    updated_at: str


class WebhookEndpoint(Model):
    """An endpoint as the API returns it (never with its secret)."""

    id: str
    url: str
    events: list[str]
    enabled: bool
    description: str | None
    disabled_reason: str | None
    created_at: str
    updated_at: str

    @classmethod
    def from_item(cls, item: EndpointItem) -> WebhookEndpoint:
        """Render a stored endpoint without its secret."""
        return cls(id=item.endpoint_id, url=item.url, events=item.events, enabled=item.enabled,
                   description=item.description, disabled_reason=item.disabled_reason,
                   created_at=item.created_at, updated_at=item.updated_at)


class WebhookEndpointCreated(WebhookEndpoint):
    """The create response: the only time ``secret`` (``whsec_…``) is shown."""

    secret: str


class EndpointPage(Model):
    """A page of the org's endpoints; ``next_cursor`` is None on the last page."""

    data: list[WebhookEndpoint]
    next_cursor: str | None = None


class EventData(Model):
    """``object`` as the API returns it; ``previous_attributes`` on updates and merges;
    ``merged_contact_id`` (only on ``contact.merged``) is the contact merged into
    ``object`` and deleted."""

    object: dict[str, Any]
    previous_attributes: dict[str, Any] | None = None
    merged_contact_id: str | None = Field(None, exclude_if=lambda v: v is None)


class WebhookEvent(Model):
    """The payload of every delivery (SPEC §6). ``id`` is derived from the stream record,
    so redeliveries and stream retries carry the same id. The events about one contact
    (``contact.*`` and its ``audience.contact_added``/``audience.contact_removed``, whose
    ``data.object`` is ``{"audience_id", "contact_id", "added_at"}``) reach each endpoint in
    commit order; a contact's delete first tells its removal from each of its audiences."""

    id: str
    type: str
    created_at: str
    organization_id: str
    data: EventData


class Delivery(Model):
    """The body of a delivery message (SQS) as the deliverer reads it: which endpoint, and
    the full event. Written by :func:`contacts_core.webhooks.queue.enqueue`."""

    org_id: str
    endpoint_id: str
    event: WebhookEvent
