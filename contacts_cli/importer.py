"""``contacts-import FILE.csv``: send a CSV file through ``POST /v1/contacts/bulk``.

Rows go in chunks of 1000 (the bulk limit) with a progress bar; the run ends with a
summary of created/updated/unchanged/failed rows and, for each failed line, why. The CSV
columns are those of the export (see :mod:`contacts_core.contacts.csv_format`); any subset works,
e.g. ``phone,country_code,first_name,last_name``. Cells the export neutralised against
spreadsheet formulas (``'=…``, ``'+27…``) are restored to their values.

Exit status: 0 when every row succeeded, 1 when some failed, 2 on usage errors.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from tqdm import tqdm

from contacts_core.contacts.csv_format import upsert_body

CHUNK = 1000  # SPEC §7 bulk limit
RETRIES = 4


@dataclass
class ImportSummary:
    """Counts per status and ``(line, reason)`` for every failed line (header is line 1)."""

    counts: Counter[str] = field(default_factory=Counter)
    failures: list[tuple[int, str]] = field(default_factory=list)

    def fail(self, line: int, reason: str) -> None:
        self.counts["failed"] += 1
        self.failures.append((line, reason))

    def report(self) -> str:
        """Human-readable summary, failed lines in file order."""
        head = ", ".join(f"{self.counts[s]} {s}"
                         for s in ("created", "updated", "unchanged", "failed"))
        lines = [f"line {n}: {why}" for n, why in sorted(self.failures)]
        return "\n".join([head, *lines])


def _reason(error: dict[str, Any]) -> str:
    fields = error.get("errors") or []
    if fields:
        return "; ".join(f"{e['field']}: {e['message']}" for e in fields)
    return str(error.get("message") or error.get("detail") or error)


def _post(session: requests.Session, url: str, contacts: list[dict[str, Any]]
          ) -> requests.Response:
    for attempt in range(RETRIES):
        response = session.post(url, json={"contacts": contacts}, timeout=60)
        if response.status_code not in (429, 500, 502, 503, 504):
            return response
        time.sleep(2**attempt)
    return response


def import_csv(path: Path, api_url: str, api_key: str, chunk: int = CHUNK,
               progress: bool = True) -> ImportSummary:
    """Import every row of ``path``; returns the summary (never raises for bad rows).

    Raises:
        requests.RequestException: the API cannot be reached.
    """
    summary = ImportSummary()
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {api_key}"
    url = api_url.rstrip("/") + "/v1/contacts/bulk"
    with path.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    pending: list[tuple[int, dict[str, Any]]] = []
    for offset, row in enumerate(rows):
        line = offset + 2
        try:
            pending.append((line, upsert_body(row)))
        except (ValueError, json.JSONDecodeError) as err:
            summary.fail(line, str(err))
    bar = tqdm(total=len(rows), unit="contact", disable=not progress, file=sys.stderr)
    bar.update(len(rows) - len(pending))
    for start in range(0, len(pending), chunk):
        part = pending[start:start + chunk]
        response = _post(session, url, [body for _, body in part])
        if response.status_code != 200:
            detail = _reason(response.json()) if response.content else response.reason
            for line, _ in part:
                summary.fail(line, f"HTTP {response.status_code}: {detail}")
        else:
            for result in response.json()["results"]:
                line = part[result["index"]][0]
                if result["status"] == "failed":
                    summary.fail(line, _reason(result["error"]))
                else:
                    summary.counts[result["status"]] += 1
        bar.update(len(part))
    bar.close()
    summary.failures.sort()
    return summary


def main(argv: list[str] | None = None) -> int:
    """Console entry point (``contacts-import``)."""
    parser = argparse.ArgumentParser(prog="contacts-import", description=__doc__.split("\n")[0])
    parser.add_argument("file", type=Path, help="CSV file with a header row")
    parser.add_argument("--api-url", default=os.environ.get("CONTACTS_API_URL",
                                                            "http://127.0.0.1:3000"))
    parser.add_argument("--api-key", default=os.environ.get("CONTACTS_API_KEY"),
                        help="ck_… key (default: $CONTACTS_API_KEY)")
    parser.add_argument("--chunk", type=int, default=CHUNK, help="rows per request (≤ 1000)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if not args.api_key or not 1 <= args.chunk <= CHUNK or not args.file.exists():
        parser.print_usage(sys.stderr)
        print("contacts-import: need an existing FILE, --api-key (or CONTACTS_API_KEY) "
              "and 1 ≤ --chunk ≤ 1000", file=sys.stderr)
        return 2
    summary = import_csv(args.file, args.api_url, args.api_key, args.chunk, not args.quiet)
    print(summary.report())
    return 1 if summary.counts["failed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
