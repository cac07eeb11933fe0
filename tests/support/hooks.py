"""Hooks around the real boto3 DynamoDB client the domain uses: pause and crash on cue.

:class:`HookedClient` wraps a boto3 client; every API method (``get_item``,
``transact_write_items``…) calls :meth:`Hooks.before` with the operation name
(``"GetItem"``) and parameters, runs the real call, then calls :meth:`Hooks.after`.
:func:`install` makes the stores of ``contacts_core`` use it, by monkeypatching the
``dynamodb_client`` factory in every ``contacts_core`` module that imported it
(``store``, ``audience_store``, ``webhook_store``), so in-process handler calls
(the ``api`` fixture) and domain functions go through the hooks.

Rules:

* :class:`Pause` stops one call (the ``nth`` matching one, before or after it reaches
  DynamoDB) until the test releases it: ``reached``/``release`` are ``threading.Event``
  handshakes, no sleeps. A safety bound (:data:`DEADLOCK_BOUND`) turns a forgotten release
  into a failure instead of a hung run.
* :class:`Crash` raises :class:`InjectedCrash` before or after the ``nth`` matching call,
  and every later call of the same actor raises too: the process is dead from then on.
  ``InjectedCrash`` is a ``BaseException``, so no ``except Exception`` in the handler or the
  domain can swallow it, just as nothing runs after a Lambda runtime is killed.

An *actor* labels the calls of one thread (``with hooks.acting("bulk"):``), so a rule can
target one request while others run through the same client unhindered.
"""

from __future__ import annotations

import contextlib
import importlib
import pkgutil
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest
from botocore.exceptions import ClientError

When = Literal["before", "after"]
DEADLOCK_BOUND = 60.0  # seconds; only hit when a test forgets to release a pause


class InjectedCrash(BaseException):
    """The process died at this point (raised by a :class:`Crash` rule)."""


@dataclass(frozen=True)
class Call:
    """One DynamoDB API call as the hooks see it."""

    op: str
    params: dict[str, Any]
    actor: str | None

    def tables(self) -> list[str]:
        """Tables the call touches (for transactions, one per action, in order)."""
        if "TableName" in self.params:
            return [self.params["TableName"]]
        if "RequestItems" in self.params:
            return list(self.params["RequestItems"])
        return [next(iter(a.values()))["TableName"] for a in self.params.get("TransactItems", [])]

    def label(self) -> str:
        """``Op(table, …)`` with short table names, for test ids and messages."""
        names = sorted({t.removesuffix("Table") for t in self.tables()})
        return f"{self.op}({','.join(names)})"


class Rule:
    """Base of hook rules: matches calls by operation name and actor."""

    def __init__(self, op: str | None = None, actor: str | None = None,
                 table: str | None = None) -> None:
        self.op, self.actor, self.table = op, actor, table

    def matches(self, call: Call) -> bool:
        """Same operation (if given), actor (if given) and a touched table whose name
        starts with ``table`` (if given, e.g. ``"ContactIdentities"``)."""
        return (self.op is None or call.op == self.op) and (
            self.actor is None or call.actor == self.actor) and (
            self.table is None or any(t.startswith(self.table) for t in call.tables()))

    def before(self, call: Call) -> None:
        """Runs before the call reaches DynamoDB."""

    def after(self, call: Call) -> None:
        """Runs after the call returned (or raised a ClientError)."""


class Pause(Rule):
    """Hold the ``nth`` matching call ``when`` (before/after it runs) until released."""

    def __init__(self, op: str | None = None, *, when: When = "after", nth: int = 1,
                 actor: str | None = None, table: str | None = None) -> None:
        super().__init__(op, actor, table)
        self.when, self.nth, self.seen = when, nth, 0
        self.reached, self.release = threading.Event(), threading.Event()
        self.call: Call | None = None
        self._lock = threading.Lock()

    def _hit(self, call: Call, when: When) -> None:
        if when != self.when or not self.matches(call):
            return
        with self._lock:
            self.seen += 1
            if self.seen != self.nth:
                return
            self.call = call
            self.reached.set()
        if not self.release.wait(DEADLOCK_BOUND):
            raise AssertionError(f"paused {call.op} was never released")

    def before(self, call: Call) -> None:
        self._hit(call, "before")

    def after(self, call: Call) -> None:
        self._hit(call, "after")

    def wait(self) -> Call:
        """Block until the paused call is held; returns it."""
        assert self.reached.wait(DEADLOCK_BOUND), f"no {self.op or 'call'} reached the pause"
        assert self.call is not None
        return self.call


class Crash(Rule):
    """Raise :class:`InjectedCrash` ``when`` the ``nth`` matching call runs; from then on
    every call of this actor raises too (a dead process makes no more calls)."""

    def __init__(self, nth: int, when: When, op: str | None = None,
                 actor: str | None = None, table: str | None = None) -> None:
        super().__init__(op, actor, table)
        self.nth, self.when, self.seen = nth, when, 0
        self.crashed_at: Call | None = None
        self._lock = threading.Lock()

    def before(self, call: Call) -> None:
        if not self.matches(call):
            return
        with self._lock:
            if self.crashed_at is not None:
                raise InjectedCrash(f"dead process called {call.op}")
            self.seen += 1
            if self.seen == self.nth and self.when == "before":
                self.crashed_at = call
                raise InjectedCrash(f"crash before call {self.nth}: {call.op}")

    def after(self, call: Call) -> None:
        if not self.matches(call):
            return
        with self._lock:
            if self.crashed_at is None and self.seen == self.nth and self.when == "after":
                self.crashed_at = call
                raise InjectedCrash(f"crash after call {self.nth}: {call.op}")


class Cancel(Rule):
    """Answer matching ``TransactWriteItems`` calls, after the first ``let_through``, as if
    another transaction had touched the same items (``TransactionCanceledException`` with
    ``TransactionConflict`` for every action); the call never reaches DynamoDB. This is
    the contention a busy org produces, made deterministic to exhaust retry budgets.
    Only transactions of at least ``min_actions`` actions count towards ``let_through``."""

    def __init__(self, let_through: int = 0, actor: str | None = None,
                 min_actions: int = 0) -> None:
        super().__init__("TransactWriteItems", actor)
        self.let_through, self.min_actions = let_through, min_actions
        self.seen, self.cancelled = 0, 0
        self._lock = threading.Lock()

    def before(self, call: Call) -> None:
        if not self.matches(call):
            return
        with self._lock:
            if len(call.params["TransactItems"]) >= self.min_actions:
                self.seen += 1
                if self.seen <= self.let_through:
                    return
            self.cancelled += 1
        from botocore.exceptions import ClientError

        reasons: list[Any] = [{"Code": "TransactionConflict", "Message": "Transaction is ongoing"}
                   for _ in call.params["TransactItems"]]
        raise ClientError({"Error": {"Code": "TransactionCanceledException",
                                     "Message": "Transaction cancelled (injected)"},
                           "CancellationReasons": reasons}, "TransactWriteItems")


class Throttle(Rule):
    """Answer matching calls as DynamoDB does once the SDK's retries ran out against a
    table or partition over its capacity (``ProvisionedThroughputExceededException``);
    the call never reaches DynamoDB. Counts the calls it refused in ``refused``."""

    def __init__(self, op: str | None = None, actor: str | None = None,
                 table: str | None = None) -> None:
        super().__init__(op, actor, table)
        self.refused = 0

    def before(self, call: Call) -> None:
        if not self.matches(call):
            return
        self.refused += 1
        from botocore.exceptions import ClientError

        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException",
                                     "Message": "Throughput exceeds the table's (injected)"}},
                          call.op)


class Hooks:
    """The rules in force and the calls seen (in the order they started)."""

    def __init__(self) -> None:
        self.rules: list[Rule] = []
        self.calls: list[Call] = []
        self.committed: list[Call] = []  # TransactWriteItems calls that succeeded
        self.recording = True
        self.record_ops: set[str] | None = None  # None: record every operation
        self._local = threading.local()
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def acting(self, actor: str) -> Iterator[None]:
        """Label this thread's calls with ``actor`` for the duration."""
        previous = getattr(self._local, "actor", None)
        self._local.actor = actor
        try:
            yield
        finally:
            self._local.actor = previous

    def actor(self) -> str | None:
        """This thread's actor label, if any."""
        return getattr(self._local, "actor", None)

    def add[R: Rule](self, rule: R) -> R:
        self.rules.append(rule)
        return rule

    def clear(self) -> None:
        """Drop every rule and the recorded calls."""
        self.rules.clear()
        with self._lock:
            self.calls.clear()

    def calls_of(self, actor: str | None) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.actor == actor]

    def wrap(self, op: str, method: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
        call = Call(op, kwargs, getattr(self._local, "actor", None))
        if self.recording and (self.record_ops is None or op in self.record_ops):
            with self._lock:
                self.calls.append(call)
        for rule in list(self.rules):
            rule.before(call)
        try:
            result = method(**kwargs)
        except ClientError:  # DynamoDB answered (a failed condition): "after" still runs
            for rule in list(self.rules):
                rule.after(call)
            raise
        if op == "TransactWriteItems":
            with self._lock:
                self.committed.append(call)
        for rule in list(self.rules):
            rule.after(call)
        return result


class HookedClient:
    """A boto3 DynamoDB client whose API methods run through :class:`Hooks`."""

    def __init__(self, client: Any, hooks: Hooks) -> None:
        self._client, self._hooks = client, hooks
        self._ops: dict[str, str] = client.meta.method_to_api_mapping

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        op = self._ops.get(name)
        if op is None:
            return attr  # meta, exceptions, get_paginator (diagnostic scans) …

        def hooked(**kwargs: Any) -> Any:
            return self._hooks.wrap(op, attr, kwargs)

        return hooked


def _actor_pool(hooks: Hooks) -> type[ThreadPoolExecutor]:
    """A ThreadPoolExecutor whose tasks act for the thread that submitted them (so a bulk
    request's parallel transactions carry the request's actor)."""

    class ActorPool(ThreadPoolExecutor):
        def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
            actor = hooks.actor()
            if actor is None:
                return super().submit(fn, *args, **kwargs)

            def acting() -> Any:
                with hooks.acting(actor):
                    return fn(*args, **kwargs)

            return super().submit(acting)

    return ActorPool


def install(monkeypatch: pytest.MonkeyPatch, hooks: Hooks) -> HookedClient:
    """Route every ``contacts_core`` store through a :class:`HookedClient` for the test;
    thread pools of ``contacts_core`` modules pass the submitter's actor on."""
    import contacts_core
    import contacts_core.dynamodb

    for info in pkgutil.walk_packages(contacts_core.__path__, "contacts_core."):  # all, now
        importlib.import_module(info.name)
    original = contacts_core.dynamodb.dynamodb_client
    proxy = HookedClient(original(), hooks)
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] == "contacts_core" and getattr(
                module, "dynamodb_client", None) is original:
            monkeypatch.setattr(module, "dynamodb_client", lambda: proxy)
        if name.split(".")[0] == "contacts_core" and getattr(
                module, "ThreadPoolExecutor", None) is ThreadPoolExecutor:
            monkeypatch.setattr(module, "ThreadPoolExecutor", _actor_pool(hooks))
    return proxy


@pytest.fixture(name="hooks")
def hooks_fixture(dynamodb: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hooks]:
    """Hooks on every DynamoDB call the domain makes during the test (released at the end,
    so a failed test never leaves a thread paused)."""
    hooked = Hooks()
    install(monkeypatch, hooked)
    yield hooked
    for rule in hooked.rules:
        if isinstance(rule, Pause):
            rule.release.set()
    hooked.rules.clear()


@dataclass
class Background:
    """A callable run in its own thread; :meth:`result` joins and re-raises."""

    fn: Callable[[], Any]
    actor: str
    hooks: Hooks
    value: Any = None
    error: BaseException | None = None
    thread: threading.Thread = field(init=False)

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self._run, name=self.actor, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with self.hooks.acting(self.actor):
            try:
                self.value = self.fn()
            except BaseException as err:
                self.error = err

    def result(self) -> Any:
        self.thread.join(DEADLOCK_BOUND)
        assert not self.thread.is_alive(), f"{self.actor} did not finish"
        if self.error is not None:
            raise self.error
        return self.value
