"""Benchmark: search and list pages vs a raw Query of the same index, for one big org.

Both run in the same process against the same DynamoDB Local, so the ratio cancels out
the machine. One org gets ``--contacts`` contacts (plain ``BatchWriteItem``, 25 per call,
from 8 threads): the contact items, their NameWords items and their email guards, as the
API would store them. Then each scenario runs ``list_contacts`` (what
``GET /v1/contacts`` does, with a fresh ``ContactStore``) and its floor — the same
DynamoDB reads made by hand with boto3, nothing parsed — alternately, ``--rounds`` times;
medians are compared. ``trips``/``RCU`` are the page's ``store.reads`` (one call).

    .venv/bin/python bench/search.py [--contacts 100000] [--rounds 20]   (or: make bench-search)

Floors: name search = ``Query`` NameWords ``begins_with(word_key, last name)`` Limit 21
+ ``BatchGetItem`` of those contacts; exact email = ``BatchGetItem`` of the email guard +
``GetItem`` of the contact; plain list / ``sort=updated_at`` = ``Query`` of the table /
``updated-index``, newest first, Limit 21; tag filters = ``Query`` with ``FilterExpression
contains(tags, :t)``, Limit 250 (the page's chunk), until 21 match or ``READ_BUDGET``
items were read.

Last run (2026-11-21, 2 cores, DynamoDB Local in memory, 100,000 contacts, 20 rounds):

    loaded 100000 contacts (+ name words, email guards) in 135.8 s (8 threads)
    medians over 20 rounds; rows: contacts on the page (+ = next_cursor)
    trips/RCU: the page's store.reads (n/c = not counted); floor: the same by hand
    scenario                  ours ms  floor ms   ratio  rows  trips    RCU  floor trips  floor RCU
    -----------------------------------------------------------------------------------------------
    name search                  60.2      26.3   2.29x   20+      2  103.0            2       22.0
    exact email search            6.3       5.1   1.23x     1    n/c    n/c            2        0.0
    plain list (created)          7.3       6.6   1.10x   20+      1    1.0            1        1.0
    sort=updated_at               6.8       5.8   1.17x   20+      1    1.0            1        1.0
    filtered list (tag=vip)      39.3      19.4   2.03x   20+      1   12.0            1       12.0
    rare filter (tag=rare)      225.9      40.3   5.61x   10+      4   48.0            4       48.0

Reading it (a cProfile of the rare page): the filtered pages filter in Python, so every
item read (250; 1,000 for ``rare``) comes back and botocore parses it — most of the time —
where the floor's ``FilterExpression`` returns only the matches, for the same RCU. The name
search walks NameWords 100 keys a call and reads those 100 contacts (103 RCU) where the
floor reads 21. (Since then: exact lookups count their reads, and a page without
filters reads only the entries it needs, 21, in key-only walks too.)
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from contacts_core.contacts.changes import ContactChanges  # noqa: E402
from contacts_core.contacts.requests import ContactUpsert  # noqa: E402
from contacts_core.contacts.search import _CHUNK, READ_BUDGET, ListQuery, list_contacts  # noqa: E402
from contacts_core.contacts.store import ContactStore  # noqa: E402
from contacts_core.dynamodb import ReadCost, dynamodb_client, serialize  # noqa: E402
from contacts_core.names import name_words  # noqa: E402
from devstack.dynamodb_local import DynamoDBLocal  # noqa: E402
from devstack.tables import create_tables  # noqa: E402

sys.path.insert(0, str(REPO / "bench"))
from bulk_upsert import environment  # noqa: E402  (the functions' environment, local)
from local_aws import local_aws  # noqa: E402  (cursor keys on a moto server)

PAGE = 20  # ListQuery's default limit; a page reads one entry past it (Limit 21)
THREADS = 8
BLOCK = 1000  # contacts built per step of the load


# ---------------------------------------------------------------------- data
def _names(count: int, syllables: int, rng: random.Random) -> list[str]:
    """``count`` distinct names of ``syllables`` consonant-vowel pairs (all the same length,
    so none is a prefix of another)."""
    pairs = [c + v for c in "bdfghklmnprstvz" for v in "aeiou"]
    every = ["".join(p) for p in itertools.product(pairs, repeat=syllables)]
    return [n.capitalize() for n in rng.sample(every, count)]


@dataclass(frozen=True)
class Org:
    """The loaded org and the values the scenarios search for."""

    org_id: str
    last_name: str
    email: str


def bodies(count: int, seed: int = 7) -> tuple[list[dict[str, Any]], list[str]]:
    """``count`` upsert bodies (200 first names, 500 last names, ~1% tagged ``rare``,
    ~30% ``vip``, ~50% SMS opted in, unique emails) and the last names used."""
    rng = random.Random(seed)
    firsts, lasts = _names(200, 2, rng), _names(500, 3, rng)
    out = []
    for i in range(count):
        first, last = rng.choice(firsts), rng.choice(lasts)
        tags = ["rare"] * (rng.random() < 0.01) + ["vip"] * (rng.random() < 0.30)
        body: dict[str, Any] = {"first_name": first, "last_name": last, "tags": tags,
                                "email": f"{first}.{last}.{i}@bench.example.com".lower()}
        if rng.random() < 0.5:
            body["consent"] = {"sms": "opted_in"}
        out.append(body)
    return out, lasts


def _write(client: Any, table: str, rows: list[dict[str, Any]]) -> None:
    """One ``BatchWriteItem`` of ≤ 25 rows, retrying ``UnprocessedItems``."""
    request = {table: [{"PutRequest": {"Item": r}} for r in rows]}
    for attempt in itertools.count():
        request = client.batch_write_item(RequestItems=request).get("UnprocessedItems")
        if not request:
            return
        time.sleep(min(0.05 * 2**attempt, 1.0))


def load(client: Any, count: int) -> tuple[Org, float]:
    """Write one org of ``count`` contacts (items, name words, email guards); returns the
    org and the seconds it took."""
    org = f"org_{uuid.uuid4().hex[:8]}"
    tables = {name: os.environ[name] for name in
              ("CONTACTS_TABLE", "NAME_WORDS_TABLE", "IDENTITIES_TABLE")}
    started = time.perf_counter()
    all_bodies, lasts = bodies(count)
    pending: set[Future[None]] = set()
    with ThreadPoolExecutor(THREADS) as pool:
        for start in range(0, count, BLOCK):
            rows: dict[str, list[dict[str, Any]]] = {t: [] for t in tables.values()}
            for body in all_bodies[start:start + BLOCK]:
                item = ContactChanges.from_request(ContactUpsert.model_validate(body)) \
                    .new_item(org)
                cid = {"S": item.contact_id}
                rows[tables["CONTACTS_TABLE"]].append(serialize(item.model_dump()))
                rows[tables["NAME_WORDS_TABLE"]] += [
                    {"org_id": {"S": org}, "word_key": {"S": f"{w}#{item.contact_id}"},
                     "contact_id": cid}
                    for w in name_words(item.first_name, item.last_name, item.name)]
                rows[tables["IDENTITIES_TABLE"]].append(
                    {"identity": {"S": f"{org}#email#{item.email}"}, "contact_id": cid,
                     "org_id": {"S": org}})
            for table, table_rows in rows.items():
                for at in range(0, len(table_rows), 25):
                    pending.add(pool.submit(_write, client, table, table_rows[at:at + 25]))
            while len(pending) > 4 * THREADS * 25:  # bound what waits in memory
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    future.result()
        for future in pending:
            future.result()
    elapsed = time.perf_counter() - started
    middle = all_bodies[count // 2]
    return Org(org, lasts[0], middle["email"]), elapsed


# ---------------------------------------------------------------------- floors
class _Floors:
    """The raw reads each page makes, by hand (no parsing); each returns its ReadCost."""

    def __init__(self, client: Any, org: Org) -> None:
        self.client, self.org = client, org
        self.contacts = os.environ["CONTACTS_TABLE"]
        self.words = os.environ["NAME_WORDS_TABLE"]
        self.identities = os.environ["IDENTITIES_TABLE"]
        self.mine = {":o": {"S": org.org_id}}

    def _batch_get(self, table: str, keys: list[dict[str, Any]], cost: ReadCost,
                   capacity: bool = True) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        request = {table: {"Keys": keys, "ConsistentRead": True}}
        while request:
            response = self.client.batch_get_item(
                RequestItems=request, **({"ReturnConsumedCapacity": "TOTAL"} if capacity else {}))
            cost.record(response)
            found += response["Responses"].get(table, [])
            request = response.get("UnprocessedKeys")
        return found

    def name_search(self) -> ReadCost:
        """Query NameWords by prefix (Limit 21), then BatchGetItem those contacts."""
        cost = ReadCost()
        response = self.client.query(
            TableName=self.words, KeyConditionExpression="org_id = :o AND begins_with("
            "word_key, :p)", ExpressionAttributeValues={
                **self.mine, ":p": {"S": self.org.last_name.lower()}},
            Limit=PAGE + 1, ConsistentRead=True, ReturnConsumedCapacity="TOTAL")
        cost.record(response)
        keys = [{"org_id": {"S": self.org.org_id}, "contact_id": e["contact_id"]}
                for e in response["Items"]]
        self._batch_get(self.contacts, keys, cost)
        return cost

    def exact_email(self) -> ReadCost:
        """BatchGetItem of the email guard, then GetItem of its contact (both consistent)."""
        cost = ReadCost()
        key = {"identity": {"S": f"{self.org.org_id}#email#{self.org.email}"}}
        guard = self._batch_get(self.identities, [key], cost, capacity=False)
        response = self.client.get_item(
            TableName=self.contacts, ConsistentRead=True,
            Key={"org_id": {"S": self.org.org_id}, "contact_id": guard[0]["contact_id"]})
        cost.record(response)
        assert "Item" in response
        return cost

    def _newest(self, index: str | None) -> ReadCost:
        cost = ReadCost()
        response = self.client.query(
            TableName=self.contacts, KeyConditionExpression="org_id = :o",
            ExpressionAttributeValues=self.mine, ScanIndexForward=False, Limit=PAGE + 1,
            ConsistentRead=False, ReturnConsumedCapacity="TOTAL",
            **({"IndexName": index} if index else {}))
        cost.record(response)
        return cost

    def plain(self) -> ReadCost:
        """Query the contacts table, newest first, Limit 21."""
        return self._newest(None)

    def updated(self) -> ReadCost:
        """Query ``updated-index``, newest first, Limit 21."""
        return self._newest("updated-index")

    def tagged(self, tag: str) -> ReadCost:
        """Query with ``contains(tags, :t)``, 250 items a call (the page's chunk), until 21
        match or ``READ_BUDGET`` items were read."""
        cost = ReadCost()
        matched = examined = 0
        params: dict[str, Any] = {
            "TableName": self.contacts, "KeyConditionExpression": "org_id = :o",
            "FilterExpression": "contains(tags, :t)", "ScanIndexForward": False,
            "ExpressionAttributeValues": {**self.mine, ":t": {"S": tag}},
            "ConsistentRead": False, "ReturnConsumedCapacity": "TOTAL"}
        while matched <= PAGE and examined < READ_BUDGET:
            response = self.client.query(**params, Limit=min(_CHUNK, READ_BUDGET - examined))
            cost.record(response)
            matched += response["Count"]
            examined += response["ScannedCount"]
            if "LastEvaluatedKey" not in response:
                break
            params["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return cost


# ---------------------------------------------------------------------- scenarios
@dataclass
class Result:
    """One scenario's timings (seconds) and one page's reads."""

    name: str
    ours: list[float]
    floor: list[float]
    rows: int = 0
    more: bool = False
    trips: int = 0
    units: float = 0.0
    floor_trips: int = 0
    floor_units: float = 0.0


def scenarios(org: Org, floors: _Floors) -> list[tuple[str, ListQuery, Callable[[], ReadCost]]]:
    """(label, ListQuery, floor) of each measured page."""
    return [
        ("name search", ListQuery(search=org.last_name), floors.name_search),
        ("exact email search", ListQuery(search=org.email), floors.exact_email),
        ("plain list (created)", ListQuery(), floors.plain),
        ("sort=updated_at", ListQuery(sort="updated_at"), floors.updated),
        ("filtered list (tag=vip)", ListQuery(tag=["vip"]), lambda: floors.tagged("vip")),
        ("rare filter (tag=rare)", ListQuery(tag=["rare"]), lambda: floors.tagged("rare")),
    ]


def _list(org_id: str, query: ListQuery) -> None:
    list_contacts(org_id, query, store=ContactStore())


def _timed(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def measure(org: Org, floors: _Floors, rounds: int) -> list[Result]:
    """Warm each scenario once (recording its reads), then time ours and the floor
    alternately ``rounds`` times."""
    results = []
    plans = scenarios(org, floors)
    for name, query, floor in plans:
        store = ContactStore()
        page = list_contacts(org.org_id, query, store=store)
        cost = floor()
        results.append(Result(name, [], [], len(page.data), page.next_cursor is not None,
                              store.reads.round_trips, store.reads.read_units,
                              cost.round_trips, cost.read_units))
        assert page.data, f"{name}: empty page"
    for _ in range(rounds):
        for result, (_, query, floor) in zip(results, plans, strict=True):
            result.ours.append(_timed(partial(_list, org.org_id, query)))
            result.floor.append(_timed(floor))
    return results


def table(results: list[Result]) -> str:
    """The results as a fixed-width text table (milliseconds, medians)."""
    head = (f"{'scenario':<24}{'ours ms':>9}{'floor ms':>10}{'ratio':>8}{'rows':>6}"
            f"{'trips':>7}{'RCU':>7}{'floor trips':>13}{'floor RCU':>11}")
    lines = [head, "-" * len(head)]
    for r in results:
        ours, floor = statistics.median(r.ours) * 1000, statistics.median(r.floor) * 1000
        rows = f"{r.rows}{'+' if r.more else ''}"
        trips = str(r.trips) if r.trips else "n/c"  # not counted by store.reads
        units = f"{r.units:.1f}" if r.trips else "n/c"
        lines.append(f"{r.name:<24}{ours:>9.1f}{floor:>10.1f}{ours / floor:>7.2f}x{rows:>6}"
                     f"{trips:>7}{units:>7}{r.floor_trips:>13}{r.floor_units:>11.1f}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with DynamoDBLocal() as ddb:
        create_tables(REPO / "template.yaml", ddb.endpoint_url)
        environment(ddb.endpoint_url)
        with local_aws(REPO / "template.yaml"):
            client = dynamodb_client()
            org, seconds = load(client, args.contacts)
            print(f"loaded {args.contacts} contacts (+ name words, email guards) in "
                  f"{seconds:.1f} s ({THREADS} threads)")
            results = measure(org, _Floors(client, org), args.rounds)
    print(f"medians over {args.rounds} rounds; rows: contacts on the page (+ = next_cursor)")
    print("trips/RCU: the page's store.reads (n/c = not counted); floor: the same by hand")
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
