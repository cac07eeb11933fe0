"""Domain errors. Each carries what the HTTP layer needs to build an RFC 9457 problem.

The mapping to HTTP status codes lives in one place (:mod:`contacts_core.http.problems`);
domain code raises these and never builds responses itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FieldError:
    """One invalid input field: ``field`` is a dotted path (``"phone"``, ``"tags.3"``)."""

    field: str
    message: str


class DomainError(Exception):
    """Base of every error the API answers with a problem body: 4xx, or 503 for
    :class:`ServiceUnavailable`."""

    code = "error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def extensions(self) -> dict[str, object]:
        """Extra members of the problem body (RFC 9457 §3.2 extension members)."""
        return {}

    def headers(self) -> dict[str, str]:
        """Extra response headers of the problem (e.g. ``Retry-After``)."""
        return {}


class ValidationFailed(DomainError):
    """Input is malformed or breaks a rule; ``errors`` names the offending fields: every
    one up to :data:`MAX_LISTED`, then the first ones and how many more (a body of 6 MB
    can hold a million unknown members, and an answer listing each would not fit Lambda's
    6 MB response)."""

    code = "validation_error"
    MAX_LISTED = 20

    def __init__(self, errors: list[FieldError], detail: str | None = None) -> None:
        listed, more = errors[:self.MAX_LISTED], len(errors) - self.MAX_LISTED
        super().__init__(detail or "; ".join(f"{e.field}: {e.message}" for e in listed)
                         + (f"; and {more} more" if more > 0 else ""))
        self.errors = listed

    def extensions(self) -> dict[str, object]:
        return {"errors": [{"field": e.field, "message": e.message} for e in self.errors]}

    @classmethod
    def single(cls, field_name: str, message: str) -> ValidationFailed:
        """Shortcut for one invalid field."""
        return cls([FieldError(field_name, message)])


class PayloadTooLarge(ValidationFailed):
    """A request or one contact in it is over a size limit (SPEC §7)."""

    code = "payload_too_large"


class NotFound(DomainError):
    """No such resource in the caller's org (other orgs' ids look the same, I4)."""

    code = "not_found"
    resource = "Resource"

    def __init__(self, resource_id: str) -> None:
        super().__init__(f"{self.resource} {resource_id} not found")


class ContactNotFound(NotFound):
    """No contact with that id in the caller's org."""

    resource = "Contact"


class NoMatchingContact(NotFound):
    """An ``update_only`` upsert matched no contact by its identifiers."""

    def __init__(self, identities: dict[str, str]) -> None:
        DomainError.__init__(self, "No contact matches " + " or ".join(
            f"{f} {v}" for f, v in identities.items()))


class AudienceNotFound(NotFound):
    """No audience with that id in the caller's org (or it is being deleted)."""

    resource = "Audience"


class ImportNotFound(NotFound):
    """No import job with that id in the caller's org."""

    resource = "Import"


class AudienceNameTaken(DomainError):
    """Another audience of the org already has this name (compared case- and accent-folded).

    ``releasing``: that audience is being deleted (it already answers 404); its name is
    free once the delete finishes, in seconds, so the 409 is ``retryable`` with
    ``Retry-After``, like ``concurrent_modification``.
    """

    code = "audience_name_conflict"
    retry_after = 1

    def __init__(self, name: str, audience_id: str, releasing: bool = False) -> None:
        super().__init__(
            f"An audience named {name!r} is being deleted ({audience_id}); the name is free "
            "once that finishes: retry in a few seconds" if releasing
            else f"An audience named {name!r} already exists: {audience_id}")
        self.name, self.audience_id, self.releasing = name, audience_id, releasing

    def extensions(self) -> dict[str, object]:
        return {"field": "name", "conflicting_audience_id": self.audience_id} | (
            {"retryable": True} if self.releasing else {})

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if self.releasing else {}


@dataclass
class Conflict:
    """Which identity collided and the contact that holds it."""

    field: str
    contact_id: str


class IdentityConflict(DomainError):
    """A phone, email or external id is already held by another contact of the org (I1).

    ``conflicts`` lists each colliding field with the id of the contact that holds it;
    for upsert, a phone matching contact A and an email matching B≠A names both.
    """

    code = "identity_conflict"

    def __init__(self, conflicts: list[Conflict]) -> None:
        described = ", ".join(f"{c.field} is held by {c.contact_id}" for c in conflicts)
        super().__init__(f"Identity already in use: {described}")
        self.conflicts = conflicts

    def extensions(self) -> dict[str, object]:
        first = self.conflicts[0]
        ext: dict[str, object] = {
            "field": first.field,
            "conflicting_contact_id": first.contact_id,
        }
        if len(self.conflicts) > 1:
            ext["conflicts"] = [
                {"field": c.field, "conflicting_contact_id": c.contact_id} for c in self.conflicts
            ]
        return ext


class AmbiguousMatch(IdentityConflict):
    """An upsert's identifiers are held by different contacts (phone → A, email → B, or an
    external id → A and a phone → B): it cannot tell which one it updates (SPEC §9.2).

    The problem names every contact involved (``conflicts``, ``contact_ids``) and says how
    to resolve it: merge them (``POST /v1/contacts/{target}/merge`` with the other as
    ``source_id``, ``merge`` in the body), then send the upsert again. ``target`` is the
    contact the external id matched, when it did (the one the upsert meant to update).
    """

    def __init__(self, conflicts: list[Conflict], target: str | None = None) -> None:
        ids = list(dict.fromkeys(c.contact_id for c in conflicts))
        self.target = target or ids[0]
        self.sources = [i for i in ids if i != self.target]
        super().__init__(conflicts)
        described = ", ".join(f"{c.field} matches {c.contact_id}" for c in conflicts)
        self.detail = (
            f"The identifiers match {len(ids)} different contacts ({described}). If they are "
            f"the same person, merge them: POST /v1/contacts/{self.target}/merge with "
            f'{{"source_id": "{self.sources[0]}"}}, then send this request again.')
        self.args = (self.detail,)

    def extensions(self) -> dict[str, object]:
        ext = super().extensions()
        ext["contact_ids"] = [self.target, *self.sources]
        ext["merge"] = {"target_id": self.target, "source_id": self.sources[0]}
        return ext


class ExternalIdTaken(IdentityConflict):
    """An upsert's unknown ``external_id`` would re-key the contact its phone/email matched,
    which already has another external id: the integrator's key is never overwritten
    silently (change it with PATCH when it is meant)."""

    def __init__(self, contact_id: str, matched_on: str) -> None:
        super().__init__([Conflict("external_id", contact_id)])
        self.detail = (f"The {matched_on.replace('_and_', ' and ')} matches {contact_id}, which "
                       "already has another external_id; to change it, PATCH that contact")
        self.args = (self.detail,)


class MergeRefused(DomainError):
    """A merge that would break a contact limit or not fit one atomic transaction; nothing
    was merged (409: the contacts' current state prevents it, RFC 9110 §15.5.10)."""

    code = "merge_refused"


class PreconditionFailed(DomainError):
    """``If-Match`` named a version that is no longer current (RFC 9110 §13.1.1)."""

    code = "precondition_failed"

    def __init__(self, expected: int, current: int) -> None:
        super().__init__(f"If-Match version {expected} is stale; current version is {current}")
        self.current = current

    def extensions(self) -> dict[str, object]:
        return {"current_version": self.current}


class ConcurrentModification(DomainError):
    """Other writes kept changing the same contacts, guards or audience until the retry
    budget ran out; nothing of this request was written, and repeating it is safe.

    Answered as 409 with ``Retry-After`` (seconds), as Stripe answers ``lock_timeout``.
    """

    code = "concurrent_modification"
    retry_after = 1

    def __init__(self, detail: str = "Other requests kept changing the same records; "
                                     "nothing was written, retry the request") -> None:
        super().__init__(detail)

    def extensions(self) -> dict[str, object]:
        return {"retryable": True}

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class IdempotencyKeyReused(DomainError):
    """The ``Idempotency-Key`` was first used with another method, path or body within
    the last 24 h (SPEC §9.4); nothing was done. 422, as Stripe answers a key reused with
    other parameters."""

    code = "idempotency_key_reused"

    def __init__(self) -> None:
        super().__init__("This Idempotency-Key was already used for a different request "
                         "(method, path or body); use a new key for a new request")


class IdempotencyInProgress(DomainError):
    """The first request with this ``Idempotency-Key`` is still running; nothing was done.
    409 with ``Retry-After``: retry with the same key to get its response."""

    code = "idempotency_in_progress"
    retry_after = 1

    def __init__(self) -> None:
        super().__init__("A request with this Idempotency-Key is still in progress; "
                         "retry later with the same key to get its response")

    def extensions(self) -> dict[str, object]:
        return {"retryable": True}

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class RateLimited(DomainError):
    """The org used up its request rate (SPEC §9.4); nothing was done. 429 with
    ``Retry-After`` (RFC 9110 §10.2.3) and the rate-limit headers of
    draft-ietf-httpapi-ratelimit-headers."""

    code = "rate_limited"

    def __init__(self, retry_after: int, limit_headers: dict[str, str]) -> None:
        super().__init__(f"Too many requests for this organization; retry in {retry_after} s")
        self.retry_after = retry_after
        self.limit_headers = limit_headers

    def extensions(self) -> dict[str, object]:
        return {"retryable": True, "retry_after": self.retry_after}

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after), **self.limit_headers}


class ServiceUnavailable(DomainError):
    """AWS throttled the request or failed to answer, after the SDK's own retries
    (:func:`contacts_core.aws.service_unavailable`). 503 with ``Retry-After`` (RFC 9110
    §15.6.4), ``retryable: true``: the request may have been partly done (a bulk request's
    earlier items), and retrying it as it is, is safe — upserts converge, deletes are
    idempotent, and with an ``Idempotency-Key`` a create is done once."""

    code = "service_unavailable"
    retry_after = 1

    def __init__(self) -> None:
        super().__init__("The service is busy or a store it needs did not answer; retry "
                         f"in {self.retry_after} s")

    def extensions(self) -> dict[str, object]:
        return {"retryable": True}

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


@dataclass
class Unauthorized(Exception):
    """The API key is missing, unknown or revoked (raised by the authorizer only)."""

    reason: str = field(default="invalid API key")
