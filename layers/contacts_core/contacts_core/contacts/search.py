"""Listing, search, filters and incremental sync: ``GET /v1/contacts`` (SPEC §9.3).

A page is served by one of three plans, never a table scan:

* **exact** — ``external_id=``, or a ``search`` term that is a valid phone (E.164,
  international digits without ``+``, or national digits with ``country_code``), a valid
  email, or an external id the org holds: one ``BatchGetItem`` of the identity guards and
  one ``GetItem`` of the contact, both strongly consistent (read-your-writes on AWS too).
  A page of zero or one contact, never a cursor.
* **words** — any other ``search`` term: word-prefix search over the NameWords table
  (:func:`contacts_core.names.name_words`), driven by the term's longest word and
  AND-ed with its other words; the contacts are read by key (``BatchGetItem``).
* **walk** — no search: the contacts table by ``contact_id`` (``sort=created_at``; ids
  are ULIDs, so creation ranges are key ranges), ``updated-index`` (``sort=updated_at``;
  ``updated_after``/``updated_before`` are key ranges), ``name-index`` (``sort=name``,
  keys only) or, with ``audience_id`` and ``sort=created_at``, AudienceMembers.

Filters are checked on each contact read (:class:`ContactFilter`). A page reads until it
holds ``limit`` contacts, the source ends, or :data:`READ_BUDGET` entries were examined;
then it still returns ``next_cursor`` (possibly after fewer than ``limit`` contacts, even
none), so a rare filter never makes one request slow.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field

from contacts_core.base_model import Model
from contacts_core.contacts.models import (
    MAX_EXTERNAL_ID_LENGTH,
    ConsentStatus,
    Contact,
    ContactItem,
    ContactPage,
    normalise_email,
)
from contacts_core.contacts.output import CHANNELS
from contacts_core.contacts.phones import InvalidPhone, looks_like_phone, normalise_phone
from contacts_core.contacts.store import ContactStore, Walk
from contacts_core.errors import ValidationFailed
from contacts_core.http.cursor import decode_cursor, encode_cursor
from contacts_core.http.paging import Cursor, PageLimit
from contacts_core.http.responses import fitting
from contacts_core.ids import (
    AUDIENCE_PREFIX,
    CONTACT_PREFIX,
    id_bound,
    id_millis,
    is_resource_id,
    iso_timestamp,
)
from contacts_core.names import MAX_NAME_WORDS, matches_words, name_words, words
from contacts_core.text import composed

READ_BUDGET = 1000  # index entries a page may examine before it answers with a cursor
_CHUNK = 250  # entries per Query when filtering whole contacts (~250 KB at 1 KB each)
_KEYS_CHUNK = 100  # entries per Query when contacts are then read by key (BatchGetItem)


def _split_tags(value: Any) -> Any:
    """``tag`` arrives once per value, or (HTTP API payload 2.0) joined by commas (so a tag
    holds no comma); each is trimmed and composed (NFC) as stored tags are, and an empty
    one (``tag=``, ``tag=a,``) stays, for the 1-character minimum to refuse it."""
    if isinstance(value, str):
        return [composed(tag.strip()) for tag in value.split(",")]
    if isinstance(value, list):
        return [composed(tag) for tag in value]
    return value


def _one_value(value: str) -> str:
    """A parameter that takes one value: repeated, it arrives joined by commas (payload
    2.0), and would silently name no audience instead of being refused."""
    if "," in value:
        raise ValueError("give one value (the parameter was repeated, or holds a comma)")
    return value


def _true_or_false(value: Any) -> Any:
    """``true`` or ``false`` (any case) only, as documented: pydantic's lax booleans would
    read ``yes``, ``on``, ``1`` and ``0`` too."""
    if isinstance(value, str):
        if value.lower() not in ("true", "false"):
            raise ValueError("expected true or false")
        return value.lower() == "true"
    return value


QueryBool = Annotated[bool, BeforeValidator(_true_or_false)]


_ISO_8601_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[Tt ].*)?", re.DOTALL)


def _iso_8601(value: Any) -> Any:
    """Refuse a time bound that is not ISO 8601 extended format (``2026-01-31`` or
    ``2026-01-31T09:30:00Z``) before pydantic reads it: pydantic's datetime also takes
    a number of seconds since the epoch, so ``20260131`` (ISO's basic date format) or a
    Unix time would silently be a moment of 1970 or another than meant (SPEC: ISO 8601).

    Raises:
        ValueError: a string that does not start with ``YYYY-MM-DD`` (→ 400 naming it).
    """
    if isinstance(value, str) and not _ISO_8601_DATE.fullmatch(value.strip()):
        raise ValueError("expected an ISO 8601 date or date-time such as 2026-01-31 or "
                         "2026-01-31T09:30:00Z")
    return value


Moment = Annotated[datetime, BeforeValidator(_iso_8601),
                   Field(description="ISO 8601 date or date-time (`2026-01-31`, "
                         "`2026-01-31T09:30:00Z`); without an offset it is UTC")]


class ListQuery(Model):
    """Query parameters of ``GET /v1/contacts`` (SPEC §9.3); unknown parameters → 400.

    * ``limit`` 1–100 (default 20), ``cursor`` (opaque, only with the same other
      parameters).
    * ``search``: any text, never a 400 — exact phone/email/external id, else word-prefix
      name search; ``country_code`` (ISO 3166-1 alpha-2) reads national phone digits.
    * ``external_id``: exact external id (not with ``search``).
    * Filters, all AND-ed: ``tag`` (repeatable or comma-separated; every tag must be
      held), ``consent_<channel>``, ``suppressed``, ``has_phone``, ``has_email``,
      ``audience_id``, ``source``, ``created_after``/``updated_after`` (inclusive) and
      ``created_before``/``updated_before`` (exclusive), compared at millisecond precision.
    * ``sort``: ``created_at`` (default), ``updated_at`` or ``name``; ``order`` ``asc`` or
      ``desc`` — default ``desc``, except ``asc`` for the incremental-sync read
      (``sort=updated_at`` with ``updated_after``). A name search is ordered by the
      matched word instead (then by creation), ``asc`` unless ``order=desc``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    REPEATABLE: ClassVar[frozenset[str]] = frozenset({"tag"})  # tag=a&tag=b: both held

    limit: PageLimit = 20
    cursor: Cursor | None = None
    search: str | None = Field(None, description=(
        "any text: an exact phone, email or external id, else word-prefix name search; "
        "a long term is searched by its first 10 words, each cut to 64 characters"))
    country_code: str | None = Field(None, pattern=r"^[A-Za-z]{2}$",
                                     description="reads national phone digits in search")
    external_id: str | None = Field(None, min_length=1, max_length=MAX_EXTERNAL_ID_LENGTH,
                                    description="exact external id (read from its guard)")
    tag: Annotated[list[Annotated[str, Field(min_length=1, max_length=64)]],
                   BeforeValidator(_split_tags), Field(max_length=50)] | None = None
    consent_whatsapp: ConsentStatus | None = None
    consent_sms: ConsentStatus | None = None
    consent_email: ConsentStatus | None = None
    consent_voice: ConsentStatus | None = None
    suppressed: QueryBool | None = None
    has_phone: QueryBool | None = None
    has_email: QueryBool | None = None
    audience_id: Annotated[str, Field(min_length=1), AfterValidator(_one_value)] | None = None
    source: str | None = Field(None, min_length=1, max_length=64)
    created_after: Moment | None = None
    created_before: Moment | None = None
    updated_after: Moment | None = None
    updated_before: Moment | None = None
    sort: Literal["created_at", "updated_at", "name"] = "created_at"
    order: Literal["asc", "desc"] | None = None

    def ascending(self) -> bool:
        """The order: as given, else :meth:`ascending_by_default`."""
        if self.order is not None:
            return self.order == "asc"
        return self.ascending_by_default()

    def ascending_by_default(self) -> bool:
        """The default order: ascending for a name search (by matched word, A to Z) and
        for the incremental-sync read (``sort=updated_at`` with ``updated_after``), else
        descending (newest first)."""
        name_search = bool((self.search or "").strip())
        return name_search or (self.sort == "updated_at" and self.updated_after is not None)

    def signed(self) -> dict[str, Any]:
        """The parameters a cursor is bound to (all but ``limit`` and ``cursor``), as they
        select and order: the tags as a set (``tag=b&tag=a`` and ``tag=a,b,a`` ask the
        same), and no ``order`` when it is the default one (given or not, as ``sort`` is
        bound with its default either way). A cursor minted without them still binds the
        same parameters."""
        bound = self.model_dump(mode="json", exclude={"limit", "cursor"}, exclude_none=True)
        if self.tag:
            bound["tag"] = sorted(set(self.tag))
        if self.order is not None and self.ascending() == self.ascending_by_default():
            del bound["order"]
        return bound


# ---------------------------------------------------------------------- filters
_LAST_MS = 253402300799999  # 9999-12-31T23:59:59.999Z, the last API timestamp


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ms(moment: datetime | None) -> int | None:
    """``moment`` (UTC when it has no offset) in whole milliseconds since the epoch,
    rounded up and clamped to the API's timestamps (1970 … 9999; earlier or later bounds
    mean the same). None stays None. Exact integer arithmetic: no float, and no local-time
    conversion (which fails for year 1 with an offset, or a date-only value)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    micros = (moment - _EPOCH) // timedelta(microseconds=1)
    return min(max(-(-micros // 1000), 0), _LAST_MS)


def _stamp(ms: int) -> str:
    return iso_timestamp(datetime.fromtimestamp(ms / 1000, UTC))


@dataclass(frozen=True)
class TimeRange:
    """``after`` ≤ t < ``before`` in epoch milliseconds (either bound may be None)."""

    after: int | None
    before: int | None

    @classmethod
    def of(cls, after: datetime | None, before: datetime | None) -> TimeRange:
        return cls(_ms(after), _ms(before))

    def empty(self) -> bool:
        return self.after is not None and self.before is not None and self.after >= self.before

    def holds(self, stamp: str) -> bool:
        """True when the API timestamp ``stamp`` is in range."""
        lower = self.after is None or stamp >= _stamp(self.after)
        return lower and (self.before is None or stamp < _stamp(self.before))

    def stamps(self) -> tuple[str | None, str | None]:
        """Inclusive bounds as API timestamps (the ``updated-index`` sort key)."""
        return (None if self.after is None else _stamp(self.after),
                None if self.before is None else _stamp(max(self.before - 1, 0)))

    def holds_ms(self, ms: int) -> bool:
        """True when the epoch millisecond ``ms`` is in range."""
        return (self.after is None or ms >= self.after) and (self.before is None
                                                             or ms < self.before)

    def contact_ids(self) -> tuple[str | None, str | None]:
        """Inclusive bounds as contact ids: a ULID starts with its 48-bit millisecond
        creation time (ULID spec), so a creation range is an id range."""
        return (None if self.after is None else id_bound(CONTACT_PREFIX, self.after, last=False),
                None if self.before is None else id_bound(CONTACT_PREFIX, self.before - 1,
                                                          last=True))


@dataclass(frozen=True)
class ContactFilter:
    """The filters of a :class:`ListQuery`, checked on a stored contact."""

    tags: tuple[str, ...] = ()
    consent: tuple[tuple[str, str], ...] = ()
    suppressed: bool | None = None
    has_phone: bool | None = None
    has_email: bool | None = None
    audience_id: str | None = None
    source: str | None = None
    created: TimeRange = TimeRange(None, None)
    updated: TimeRange = TimeRange(None, None)

    @classmethod
    def of(cls, query: ListQuery) -> ContactFilter:
        consent = tuple((c, s) for c in CHANNELS
                        if (s := getattr(query, f"consent_{c}")) is not None)
        return cls(tuple(query.tag or ()), consent, query.suppressed, query.has_phone,
                   query.has_email, query.audience_id, query.source,
                   TimeRange.of(query.created_after, query.created_before),
                   TimeRange.of(query.updated_after, query.updated_before))

    def is_open(self) -> bool:
        """True when nothing is filtered."""
        return self == ContactFilter()

    def matches_nothing(self) -> bool:
        """True when a time range is empty (after ≥ before), or ``audience_id`` is not an
        audience id at all (``aud_`` + ULID): like an unknown one, it has no members, and it
        never reaches a key (README: ids of any length or bytes)."""
        return (self.created.empty() or self.updated.empty()
                or (self.audience_id is not None
                    and not is_resource_id(self.audience_id, AUDIENCE_PREFIX)))

    def accepts(self, item: ContactItem) -> bool:
        """True when ``item`` passes every filter."""
        return (all(t in item.tags for t in self.tags)
                and all(item.consent.get(c, "unknown") == s for c, s in self.consent)
                and (self.suppressed is None or item.suppressed == self.suppressed)
                and (self.has_phone is None or (item.phone is not None) == self.has_phone)
                and (self.has_email is None or (item.email is not None) == self.has_email)
                and (self.audience_id is None or self.audience_id in item.audience_ids)
                and (self.source is None or item.source == self.source)
                and self.created.holds_ms(id_millis(item.contact_id, CONTACT_PREFIX))
                and self.updated.holds(item.updated_at))


# ---------------------------------------------------------------------- search terms
def exact_identities(term: str, country_code: str | None) -> dict[str, str]:
    """The identifiers a search term may be exactly ({field: stored value}): the term as
    an external id (when it can be one), and the email or phone it is when valid.

    Phone: E.164, international digits without ``+`` (``971501234567``, or after the
    ``00`` international prefix: ``00971501234567``), or national digits read with
    ``country_code`` (``082 123 4567`` + ``ZA``). Email: any valid
    address, compared lower case.
    """
    found: dict[str, str] = {}
    if len(term) <= MAX_EXTERNAL_ID_LENGTH and term.isprintable():
        found["external_id"] = term
    if "@" in term:
        with contextlib.suppress(ValueError):
            found["email"] = normalise_email(term)
    elif looks_like_phone(term):
        tries = [(term, None)] if term.startswith("+") else \
            [(term, country_code)] * bool(country_code) + [("+" + term, None)]
        if term.startswith("00"):  # "00" is the international call prefix of most
            tries.append(("+" + term[2:], None))  # countries (ITU-T E.164 Annex): 0027… is +27…
        for raw, region in tries:
            try:
                found["phone"] = normalise_phone(raw, region).e164
                break
            except InvalidPhone:
                continue
    return found


def _exact_page(db: ContactStore, org_id: str, identities: dict[str, str],
                filters: ContactFilter) -> ContactPage | None:
    """Every contact holding one of ``identities`` — the external id's holder first, then
    the email's, then the phone's, each once (so at most 3) — that passes ``filters``.

    None (a name search follows) when the term is only text (no email or phone in it) and
    no holder passes: a contact whose external id is the word ``hassan`` but lacks the
    ``vip`` tag does not hide the ``vip`` contacts named Hassan. Reads: the guards in one
    consistent ``BatchGetItem``, the holder(s) consistently (``GetItem`` for one).
    """
    held = db.read_guards(org_id, identities) if identities else {}
    holders = list(dict.fromkeys(held[f] for f in ("external_id", "email", "phone")
                                 if f in held))
    if len(holders) == 1:
        items = [db.get(org_id, holders[0])]
    else:
        by_id = db.get_many(org_id, holders) if holders else {}
        items = [by_id.get(holder) for holder in holders]
    kept = [item for item in items
            if item is not None and any(getattr(item, f) == v for f, v in identities.items())
            and filters.accepts(item)]
    if not kept and set(identities) <= {"external_id"}:
        return None
    return ContactPage(data=[Contact.from_item(item) for item in kept], next_cursor=None)


# ---------------------------------------------------------------------- walks
@dataclass(frozen=True)
class _Plan:
    """A walk and how an entry becomes an accepted contact (or None)."""

    walk: Walk
    resolve: Callable[[dict[str, Any], dict[str, ContactItem]], ContactItem | None]


def _plan(org_id: str, query: ListQuery, filters: ContactFilter,
          prefixes: list[str]) -> _Plan:
    ascending = query.ascending()

    def whole(entry: dict[str, Any], _: dict[str, ContactItem]) -> ContactItem | None:
        item = ContactItem(**entry)
        return item if filters.accepts(item) else None

    def by_key(check: Callable[[dict[str, Any], ContactItem], bool]
               ) -> Callable[[dict[str, Any], dict[str, ContactItem]], ContactItem | None]:
        def resolve(entry: dict[str, Any], read: dict[str, ContactItem]) -> ContactItem | None:
            item = read.get(entry["contact_id"])
            return item if item and check(entry, item) and filters.accepts(item) else None
        return resolve

    if prefixes:
        driver = max(prefixes, key=len)

        def first_match(entry: dict[str, Any], item: ContactItem) -> bool:
            held = name_words(item.first_name, item.last_name, item.name)
            starting = [w for w in held if w.startswith(driver)]
            # one entry per contact: the first of its matching words in walk order
            first = (min if ascending else max)(starting, default=None)
            word = entry["word_key"].rsplit("#", 1)[0]
            return word == first and matches_words(prefixes, held)

        return _Plan(Walk("words", org_id, ascending, prefix=driver), by_key(first_match))
    if query.audience_id and query.sort == "created_at":
        lower, upper = filters.created.contact_ids()
        return _Plan(Walk("audience", query.audience_id, ascending, lower=lower, upper=upper),
                     by_key(lambda entry, item: entry.get("org_id") == org_id))
    if query.sort == "name":
        return _Plan(Walk("name", org_id, ascending),
                     by_key(lambda entry, item: entry["name_key"] == item.name_key))
    if query.sort == "updated_at":
        lower, upper = filters.updated.stamps()
        return _Plan(Walk("updated", org_id, ascending, lower=lower, upper=upper), whole)
    lower, upper = filters.created.contact_ids()
    return _Plan(Walk("created", org_id, ascending, lower=lower, upper=upper), whole)


_Found = list[tuple[ContactItem, dict[str, str]]]  # accepted contacts and their positions


def _walk_page(db: ContactStore, org_id: str, plan: _Plan, limit: int, open_filter: bool,
               start: dict[str, str] | None) -> tuple[_Found, dict[str, str] | None]:
    """Read ``plan`` from ``start`` until one contact past ``limit`` is accepted (then the
    cursor is the ``limit``-th's position), the walk ends (no cursor), or
    :data:`READ_BUDGET` entries were examined (cursor at the last one examined)."""
    accepted: _Found = []
    examined, position = 0, start
    while True:
        if open_filter:  # most entries become contacts: read what the page needs
            chunk = limit + 1 - len(accepted)
        else:
            chunk = _CHUNK if plan.walk.carries_contacts else _KEYS_CHUNK
        entries, last = db.walk(plan.walk, position, min(chunk, READ_BUDGET - examined))
        read = {} if plan.walk.carries_contacts else db.get_many(
            org_id, [e["contact_id"] for e in entries])
        for entry in entries:
            examined += 1
            item = plan.resolve(entry, read)
            if item is None:
                continue
            if len(accepted) == limit:
                return accepted, accepted[-1][1]
            accepted.append((item, plan.walk.position(entry)))
        if entries:
            position = plan.walk.position(entries[-1])
        if last is None:
            return accepted, None
        position = last
        if examined >= READ_BUDGET:
            return accepted, position


def _fit(found: _Found, cursor_key: dict[str, str] | None
         ) -> tuple[list[Contact], dict[str, str] | None]:
    """Cut the page where Lambda's 6 MB response ends (the cursor resumes there)."""
    contacts = [Contact.from_item(item) for item, _ in found]
    fit = fitting(contacts)
    if fit < len(contacts):
        return contacts[:fit], found[fit - 1][1]
    return contacts, cursor_key


def _live_audience(org_id: str, audience_id: str | None) -> bool:
    """True when there is no ``audience_id`` filter, or it names an audience of ``org_id``
    that is not being deleted (one strongly consistent ``GetItem``). Another org's audience,
    an unknown one and one being deleted (its members are still being removed) are all an
    empty last page: the member walk never reads another org's partition (I4: a foreign id
    answers as an unknown one, not with empty pages that count its members), and a deleted
    audience filters nothing, as it already answers 404."""
    if audience_id is None:
        return True
    from contacts_core.audiences.store import AudienceStore  # only this filter needs it

    audience = AudienceStore().get(org_id, audience_id)
    return audience is not None and not audience.deleting


def list_contacts(org_id: str, query: ListQuery,
                  store: ContactStore | None = None) -> ContactPage:
    """One page of the org's contacts (see the module docstring for the plans).

    Walking ``next_cursor`` returns every matching contact once. The incremental-sync read
    ``sort=updated_at&updated_after=T`` (ascending) returns every contact changed at or
    after ``T`` at least once; one that changes again after it was returned comes again
    later in the walk with its new version (``updated_at`` increases), never twice with
    the same version.

    Raises:
        ValidationFailed: on ``cursor`` (tampered, foreign, other parameters) or on
            ``external_id`` given with ``search``. Never on the text of ``search``.
    """
    db = store or ContactStore()
    if query.external_id and query.search:
        raise ValidationFailed.single("external_id", "give either external_id or search")
    signed = query.signed()
    start = decode_cursor(query.cursor, org_id, signed) if query.cursor else None
    filters = ContactFilter.of(query)
    if filters.matches_nothing() or not _live_audience(org_id, filters.audience_id):
        return ContactPage(data=[], next_cursor=None)
    term = (query.search or "").strip()
    if query.external_id:
        exact = _exact_page(db, org_id, {"external_id": query.external_id}, filters)
        return exact or ContactPage(data=[], next_cursor=None)
    prefixes: list[str] = []
    if term:
        if start is None:
            exact = _exact_page(db, org_id, exact_identities(term, query.country_code), filters)
            if exact is not None:
                return exact
        prefixes = words(term)[:MAX_NAME_WORDS]
        if not prefixes:
            return ContactPage(data=[], next_cursor=None)
    plan = _plan(org_id, query, filters, prefixes)
    found, cursor_key = _walk_page(db, org_id, plan, query.limit, filters.is_open(), start)
    contacts, cursor_key = _fit(found, cursor_key)
    return ContactPage(data=contacts,
                       next_cursor=encode_cursor(org_id, signed, cursor_key) if cursor_key
                       else None)
