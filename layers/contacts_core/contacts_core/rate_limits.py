"""Per-org rate limits (SPEC §9.4): a token bucket per org, kept in DynamoDB.

The bucket is the generic cell rate algorithm (GCRA, ITU-T I.371), the token bucket
written as one number: ``tat``, the theoretical arrival time of the next request, in
microseconds since the epoch. With emission interval ``T = 1 s / rate`` and tolerance
``tau = burst × T`` a request at ``now`` is allowed when ``max(tat, now) + T - now <= tau``,
and then ``tat`` becomes ``max(tat, now) + T``. An idle org can send ``burst`` requests at
once and ``rate`` per second after that; one org's bucket is one item, so it can never
use another org's capacity.

Each request costs one conditional ``UpdateItem`` (two when a busy bucket has just gone
idle or the reverse); refused writes return the stored ``tat`` so a 429 knows its
``Retry-After`` without another read. The README's decision record compares this with
usage plans, WAF and in-memory limiters.

Policies: ``RATE_LIMIT_PER_SECOND``/``RATE_LIMIT_BURST`` (template parameters) for every
org, overridden per org by a ``policy`` item that the authorizer reads and hands to the
functions in its context (``rate_limit``, ``rate_burst``).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from functools import cache
from typing import Any

from botocore.exceptions import ClientError

from contacts_core.dynamodb import dynamodb_client
from contacts_core.errors import RateLimited

MICROS = 1_000_000
POLICY_NAME = "org"
_ATTEMPTS = 4  # advance → restart → advance at most (``tat`` only grows), + one spare
_SEEN_MAX = 10_000  # orgs remembered per container (a guess only; forgetting is safe)
_IDLE_TTL_SECONDS = 3600  # a bucket idle this long is full again; DynamoDB TTL drops it


@dataclass(frozen=True)
class RatePolicy:
    """``rate`` requests per second sustained, ``burst`` at once (both ≥ 1)."""

    rate: int
    burst: int

    def __post_init__(self) -> None:
        if self.rate < 1 or self.burst < 1:
            raise ValueError("rate and burst must be at least 1")

    @property
    def interval(self) -> int:
        """Emission interval ``T`` in microseconds (≥ 1)."""
        return max(1, MICROS // self.rate)

    @property
    def tolerance(self) -> int:
        """``tau = burst × T`` in microseconds: how far ``tat`` may run ahead of now."""
        return self.burst * self.interval

    @classmethod
    def default(cls) -> RatePolicy:
        """The stage-wide default from the environment (template parameters
        ``RateLimitPerSecond``/``RateLimitBurst``; 100/s, burst 200 when unset)."""
        return cls(int(os.environ.get("RATE_LIMIT_PER_SECOND", "100")),
                   int(os.environ.get("RATE_LIMIT_BURST", "200")))

    @classmethod
    def from_context(cls, context: dict[str, Any]) -> RatePolicy:
        """The policy the authorizer put in its context, else :meth:`default`."""
        try:
            return cls(int(context["rate_limit"]), int(context["rate_burst"]))
        except (KeyError, TypeError, ValueError):
            return cls.default()


@dataclass(frozen=True)
class RateDecision:
    """Outcome for one request: allowed or not, what is left, when to come back."""

    allowed: bool
    policy: RatePolicy
    remaining: int  # requests that would be allowed right now after this one
    reset: int  # seconds until the bucket is full again
    retry_after: int  # seconds until one request is allowed again (0 when allowed)

    def headers(self) -> dict[str, str]:
        """``RateLimit-Policy`` and ``RateLimit`` (draft-ietf-httpapi-ratelimit-headers,
        Structured Fields): quota ``q`` per window ``w`` seconds, the ``burst`` extension
        parameter, ``r`` remaining and ``t`` seconds to the reset."""
        return {
            "RateLimit-Policy": f'"{POLICY_NAME}";q={self.policy.rate};w=1;'
                                f"burst={self.policy.burst}",
            "RateLimit": f'"{POLICY_NAME}";r={self.remaining};t={self.reset}',
        }

    def raise_if_refused(self) -> None:
        """Raises :class:`RateLimited` (429) when the request was refused."""
        if not self.allowed:
            raise RateLimited(self.retry_after, self.headers())


def decision_after(tat: int, now: int, policy: RatePolicy) -> RateDecision:
    """The allowed decision once ``tat`` (µs) was stored for a request at ``now`` (µs)."""
    remaining = max(0, (now + policy.tolerance - tat) // policy.interval)
    return RateDecision(True, policy, remaining, math.ceil(max(0, tat - now) / MICROS), 0)


def refusal(tat: int, now: int, policy: RatePolicy) -> RateDecision:
    """The refused decision against a stored ``tat`` (µs) that is too far ahead."""
    wait = tat - (now + policy.tolerance - policy.interval)
    return RateDecision(False, policy, 0, math.ceil(max(0, tat - now) / MICROS),
                        max(1, math.ceil(wait / MICROS)))


class RateLimitStore:
    """Buckets and policies in the ``RateLimits`` table (PK ``org_id``, SK ``kind``:
    ``bucket`` holds ``tat``; ``policy`` holds ``rate``/``burst``)."""

    def __init__(self, client: Any | None = None, table: str | None = None) -> None:
        self.client = client or dynamodb_client()
        self.table = table or os.environ["RATE_LIMITS_TABLE"]
        self._seen: dict[str, int] = {}  # org → last tat seen: picks the likely update

    def take(self, org_id: str, policy: RatePolicy, now: int | None = None) -> RateDecision:
        """Take one request from ``org_id``'s bucket; ``now`` in µs (default: the clock).

        One conditional ``UpdateItem`` while the bucket is busy (``tat >= now``) or idle,
        two when it just changed between the two; never a read. The store remembers the
        last ``tat`` it saw per org to pick the likely update first, so keep one store per
        container. An org it has not seen is guessed idle: a bucket is busy only while its
        org sends faster than its rate, which most orgs never do, so a new container's
        first request (its cold start) usually costs one call, not two.
        """
        clock = _clock if now is None else (lambda: now)
        at = clock()
        busy = self._seen.get(org_id, 0) >= at  # the guess: what this container last saw
        for _ in range(_ATTEMPTS):
            stored, tat = (self._advance(org_id, policy, at) if busy
                           else self._restart(org_id, policy, at))
            if len(self._seen) >= _SEEN_MAX:
                self._seen.clear()
            self._seen[org_id] = tat
            if stored:
                return decision_after(tat, at, policy)
            busy = tat >= at  # ``tat`` never decreases: once busy, advancing will hold
            if busy and tat > at + policy.tolerance - policy.interval:
                at = clock()  # judged on a fresh clock: a slow call must not age ``at``
                if tat > at + policy.tolerance - policy.interval:
                    return refusal(tat, at, policy)
        return refusal(at + policy.tolerance, at, policy)  # cannot happen: see above

    def _advance(self, org_id: str, policy: RatePolicy, now: int) -> tuple[bool, int]:
        """Busy bucket: ``tat += T`` if ``now <= tat <= now + tau - T``."""
        return self._update(
            org_id, "SET tat = tat + :t, expires_at = :exp", "tat BETWEEN :now AND :limit",
            {":t": policy.interval, ":now": now,
             ":limit": now + policy.tolerance - policy.interval,
             ":exp": now // MICROS + _IDLE_TTL_SECONDS})

    def _restart(self, org_id: str, policy: RatePolicy, now: int) -> tuple[bool, int]:
        """Idle (or new) bucket: ``tat = now + T`` if ``tat < now``."""
        return self._update(
            org_id, "SET tat = :next, expires_at = :exp",
            "attribute_not_exists(tat) OR tat < :now",
            {":next": now + policy.interval, ":now": now,
             ":exp": now // MICROS + _IDLE_TTL_SECONDS})

    def _update(self, org_id: str, update: str, condition: str,
                values: dict[str, int]) -> tuple[bool, int]:
        """(stored, tat): the new ``tat`` when the condition held, else the stored one
        (``-1`` when there is none)."""
        try:
            response = self.client.update_item(
                TableName=self.table, Key=_key(org_id, "bucket"), UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues={k: {"N": str(v)} for k, v in values.items()},
                ReturnValues="UPDATED_NEW", ReturnValuesOnConditionCheckFailure="ALL_OLD")
        except ClientError as err:
            if err.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            item: dict[str, Any] = err.response.get("Item") or {}  # type: ignore[assignment]
            old = item.get("tat")
            return False, int(old["N"]) if old else -1
        return True, int(response["Attributes"]["tat"]["N"])

    def policy(self, org_id: str) -> RatePolicy | None:
        """``org_id``'s own policy, or None when it has the default (one ``GetItem``)."""
        item = self.client.get_item(TableName=self.table, Key=_key(org_id, "policy")).get("Item")
        if not item:
            return None
        return RatePolicy(int(item["rate"]["N"]), int(item["burst"]["N"]))

    def set_policy(self, org_id: str, policy: RatePolicy | None) -> None:
        """Give ``org_id`` its own policy, or back the default with None. The authorizer
        caches its answer per key for up to 5 minutes (``ReauthorizeEvery``)."""
        if policy is None:
            self.client.delete_item(TableName=self.table, Key=_key(org_id, "policy"))
            return
        self.client.put_item(TableName=self.table, Item={
            **_key(org_id, "policy"), "rate": {"N": str(policy.rate)},
            "burst": {"N": str(policy.burst)}})


def _clock() -> int:
    """Now in microseconds since the epoch."""
    return time.time_ns() // 1000


@cache
def rate_store() -> RateLimitStore:
    """The container's store (it remembers each org's last ``tat``, see :meth:`take`)."""
    return RateLimitStore()


def policy_context(org_id: str) -> dict[str, int]:
    """The authorizer's context entries for ``org_id``'s rate policy (its own, else the
    default): ``{"rate_limit": 100, "rate_burst": 200}``. One ``GetItem``; API Gateway
    caches the authorizer's answer per key for ``ReauthorizeEvery`` (300 s)."""
    policy = rate_store().policy(org_id) or RatePolicy.default()
    return {"rate_limit": policy.rate, "rate_burst": policy.burst}


def _key(org_id: str, kind: str) -> dict[str, dict[str, str]]:
    return {"org_id": {"S": org_id}, "kind": {"S": kind}}
