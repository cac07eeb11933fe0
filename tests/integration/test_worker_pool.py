"""The local stack's worker pool limits each function's concurrent invocations (warm
workers alive at once) like Lambda's concurrency: a default for every function (the
stack's ``--concurrency``), or a function's own limit, which the stack sets for a function
fed by event sources to the invocations they run at once (an SQS mapping's pollers), so
those pollers never wait for one another's workers. Real worker processes, a stand-in
function."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.workers import Worker, WorkerPool, WorkerSpec

DEFAULT = 2


@pytest.fixture
def code(tmp_path: Path) -> Path:
    """A function's task root: a handler that returns at once."""
    (tmp_path / "app.py").write_text("def handler(event, context):\n    return None\n")
    return tmp_path


def spec(code: Path, function_name: str) -> WorkerSpec:
    return WorkerSpec(function_name=function_name, handler="app.handler",
                      sys_path=(str(code),), env={"PATH": "/usr/bin:/bin"}, timeout_s=3.0)


@pytest.fixture
def pool() -> Iterator[WorkerPool]:
    """A pool with a default of 2 workers per function, and 6 for ``Deliver``."""
    workers = WorkerPool(lambda line: None, max_per_function=DEFAULT, limits={"Deliver": 6})
    try:
        yield workers
    finally:
        workers.close()


def acquire_in_background(pool: WorkerPool, worker_spec: WorkerSpec) -> tuple[
        threading.Thread, list[Worker]]:
    """Start acquiring a worker in another thread; the list gets it once acquired."""
    got: list[Worker] = []
    thread = threading.Thread(target=lambda: got.append(pool.acquire(worker_spec)),
                              daemon=True)
    thread.start()
    return thread, got


def test_a_function_with_its_own_limit_holds_that_many_workers_at_once(pool, code):
    # Given a pool whose default is 2 workers per function and whose Deliver may have 6
    assert pool.limit("Deliver") == 6 and pool.limit("Api") == DEFAULT
    # When Deliver's six invocations overlap
    delivering = [pool.acquire(spec(code, "Deliver")) for _ in range(6)]
    # Then each has a worker process of its own
    assert len({w.process.pid for w in delivering}) == 6
    # And a seventh waits until one of them is released
    thread, got = acquire_in_background(pool, spec(code, "Deliver"))
    thread.join(0.3)
    assert not got
    pool.release(delivering.pop())
    thread.join(5)
    assert len(got) == 1
    for worker in [*delivering, *got]:
        pool.release(worker)


def test_another_function_keeps_the_default_limit(pool, code):
    # Given Deliver's six workers busy
    delivering = [pool.acquire(spec(code, "Deliver")) for _ in range(6)]
    # When another function's invocations overlap
    api = [pool.acquire(spec(code, "Api")) for _ in range(DEFAULT)]
    # Then it has the default's workers, and one more invocation waits for one of them
    thread, got = acquire_in_background(pool, spec(code, "Api"))
    thread.join(0.3)
    assert not got
    pool.release(api.pop())
    thread.join(5)
    assert len(got) == 1
    assert len(pool.pids()) == 6 + DEFAULT
    for worker in [*delivering, *api, *got]:
        pool.release(worker)


def test_raising_a_limit_lets_a_waiting_invocation_go_on(pool, code):
    # Given a function at its (default) limit and an invocation waiting for a worker
    held = [pool.acquire(spec(code, "Api")) for _ in range(DEFAULT)]
    thread, got = acquire_in_background(pool, spec(code, "Api"))
    thread.join(0.3)
    assert not got
    # When its limit is raised
    pool.set_limit("Api", DEFAULT + 1)
    # Then the waiting invocation gets a new worker at once
    thread.join(5)
    assert len(got) == 1 and got[0] not in held
    assert pool.limit("Api") == DEFAULT + 1
    for worker in [*held, *got]:
        pool.release(worker)


def test_a_limit_below_one_is_refused(pool):
    with pytest.raises(ValueError, match="at least 1"):
        pool.set_limit("Api", 0)
    with pytest.raises(ValueError, match="at least 1"):
        WorkerPool(lambda line: None, limits={"Deliver": 0})
    assert pool.limit("Api") == DEFAULT
