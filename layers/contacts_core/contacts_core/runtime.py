"""The Lambda execution environment's cold start: no cyclic garbage collection while it runs.

A cold start imports a few hundred modules (botocore, pydantic, Powertools, ours) and then
runs the first invocation, which builds pydantic validators and botocore's endpoint rules.
Every object those allocate is tracked by CPython's cyclic garbage collector, and its
collections, triggered by allocation counts (``gc.get_threshold()``), walk the whole growing
heap again and again while it is nearly all live: measured here, ~10 ms of the upsert's
~160 ms of imports, more with its first call (``bench/cold_start.py``).

So, inside Lambda (its runtime sets ``_HANDLER``, the function's handler setting; see
"Defined runtime environment variables" in the AWS Lambda Developer Guide), collection is
switched off when :mod:`contacts_core` is first imported and switched back on when the
first invocation ends (:func:`resume_collection`, called by
:func:`contacts_core.observability.observed`), after :func:`gc.freeze` has moved what the
cold start built to the permanent generation, so later collections never walk it again
(the use the Python documentation gives for ``gc.freeze``). Reference counting frees
memory as usual throughout; only reference cycles that became garbage during the cold start
are never freed, frozen with the rest (~130 KiB after the upsert's imports, once per
execution environment). Outside Lambda (tests, tools) nothing changes.
"""

from __future__ import annotations

import gc
import os

_paused = False


def pause_collection() -> None:
    """Switch cyclic garbage collection off for the cold start, inside Lambda only
    (``_HANDLER`` set) and only if it is on; idempotent."""
    global _paused
    if os.environ.get("_HANDLER") and gc.isenabled() and not _paused:
        gc.disable()
        _paused = True


def resume_collection() -> None:
    """End the cold start: freeze the objects it built (:func:`gc.freeze`), then switch
    collection back on. Does nothing unless :func:`pause_collection` switched it off."""
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()
