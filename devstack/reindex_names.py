"""``contacts-reindex-names [--all] [--org ORG]``: re-index names as this version folds them.

Run it once after deploying a version that changed how names are folded for search and
``sort=name`` (see README "Upgrading"); it is safe to run again, and while the API serves.
``--all`` re-indexes every contact, also those an earlier version stored without search
words. The tables are ``CONTACTS_TABLE``, ``IDENTITIES_TABLE`` and ``NAME_WORDS_TABLE``
(the stack's outputs) with plain boto3 configuration (your AWS profile and region, or
``AWS_ENDPOINT_URL_DYNAMODB``); with none set, the running local stack (``make dev``).
"""

from __future__ import annotations

import argparse
import os
import sys

from botocore.exceptions import BotoCoreError, ClientError

from devstack.dynamodb_local import REPO_ROOT

TABLES = ("CONTACTS_TABLE", "IDENTITIES_TABLE", "NAME_WORDS_TABLE")


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit status (0 done, 1 AWS/DynamoDB error or contacts
    left changing, 2 bad usage)."""
    parser = argparse.ArgumentParser(prog="contacts-reindex-names",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--all", action="store_true", help="every contact, not only those "
                        "an earlier version indexed differently")
    parser.add_argument("--org", help="only this org's contacts (the Scan still reads the "
                        "whole table)")
    args = parser.parse_args(argv)
    given = [t for t in TABLES if os.environ.get(t)]
    if given and len(given) < len(TABLES):
        parser.error("set all of " + ", ".join(TABLES) + " (the stack's outputs) or none")
    if not given:
        try:
            _use_local_stack()
        except LookupError as exc:
            parser.error(f"{exc}; for a deployed stack set " + ", ".join(TABLES))
    from contacts_core.contacts.reindex import reindex_names

    try:
        report = reindex_names(everything=args.all, org_id=args.org)
    except (BotoCoreError, ClientError) as exc:
        print(f"contacts-reindex-names: error: {exc}", file=sys.stderr)
        return 1
    print(f"examined {report.examined} contacts, re-indexed {report.reindexed}"
          f" ({report.retried} read again after a concurrent write)")
    if report.left:
        print("still changing, run again: " + " ".join(report.left), file=sys.stderr)
        return 1
    return 0


def _use_local_stack() -> None:
    """Point boto3 and the tables at the running local stack.

    Raises:
        LookupError: no local stack is running (``NoLocalStack`` is one).
    """
    from devstack.state import use_local_stack
    from devstack.tables import local_table

    use_local_stack()
    for variable in TABLES:
        os.environ[variable] = local_table(variable, REPO_ROOT / "template.yaml")


if __name__ == "__main__":
    sys.exit(main())
