"""Re-index contacts' names after the way names are folded changed (SPEC §9.3).

Name search reads NameWords and ``sort=name`` reads ``name-index``; both hold names folded
by :func:`contacts_core.names.search_fold`. Contacts written by an earlier version keep
what that version wrote until a write moves their words: names folded without
``search_fold``'s letters (``søren`` for "Søren", so ``search=soren`` missed him) and the
earlier ``name_key`` (nameless contacts first). :func:`reindex_names` writes each such
contact's index entries as this version does, one transaction per contact, without
changing the contact (no new ``version``, no webhook event). It reads the whole Contacts
table with a ``Scan``: an operator's one-off job (``contacts-reindex-names``), never an API
request. Running it again finds nothing to do; stopping it half way leaves every contact
either as it was or re-indexed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from contacts_core.contacts.models import ContactItem
from contacts_core.contacts.store import ContactStore
from contacts_core.dynamodb import ConcurrentModification
from contacts_core.names import fold, name_key, name_words

ATTEMPTS = 5  # per contact: a contact that keeps changing is re-read this many times


@dataclass
class ReindexReport:
    """What :func:`reindex_names` did: contacts ``examined`` (every one in the table),
    ``reindexed`` (transactions written), ``retried`` (re-read after a concurrent write)
    and the ids ``left`` (still changing after :data:`ATTEMPTS`; run again)."""

    examined: int = 0
    reindexed: int = 0
    retried: int = 0
    left: list[str] = field(default_factory=list)


def indexed_as_earlier(item: ContactItem, store: ContactStore) -> bool:
    """True when ``item``'s names are indexed as an earlier version did: its ``name_key`` is
    not this version's, or NameWords holds a word spelled without
    :func:`~contacts_core.names.search_fold`'s letters (read only for names that have
    such letters)."""
    if item.name_key != name_key(item.name, item.contact_id):
        return True
    parts = (item.first_name, item.last_name, item.name)
    earlier = set(name_words(*parts, fold)) - set(name_words(*parts))
    return bool(earlier) and store.holds_any_word(item, earlier)


def reindex_names(everything: bool = False, org_id: str | None = None,
                  store: ContactStore | None = None) -> ReindexReport:
    """Re-index the names of every contact that needs it, of every org or of ``org_id``.

    ``everything`` re-indexes every contact, not only those :func:`indexed_as_earlier`
    finds: contacts stored before NameWords existed have no words at all. Costs: the
    ``Scan`` reads the table once (0.5 RCU per 4 KB); each re-indexed contact is one
    ``TransactWriteItems`` of 1 + (words put) + (old spellings deleted) items, 2 WCU each.

    Raises:
        botocore's ClientError / BotoCoreError: DynamoDB refused or could not be reached
            (contacts already re-indexed stay so; run again).
    """
    db = store or ContactStore()
    report = ReindexReport()
    for scanned in db.scan_contacts(org_id):
        report.examined += 1
        item: ContactItem | None = scanned
        for _ in range(ATTEMPTS):
            if item is None or not (everything or indexed_as_earlier(item, db)):
                break
            try:
                db.reindex_names(item)
                report.reindexed += 1
                break
            except ConcurrentModification:  # it changed since the scan read it: read again
                report.retried += 1
                item = db.get(item.org_id, item.contact_id)
        else:
            report.left.append(scanned.contact_id)
    return report
