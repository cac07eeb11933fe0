"""Logs, traces and metrics shared by every function (AWS Lambda Powertools).

* :data:`logger` — one Powertools ``Logger`` for the layer and the functions (JSON lines,
  service ``POWERTOOLS_SERVICE_NAME``). :func:`observed` gives every line of an invocation
  the Lambda context and the correlation id; :func:`bind_org` (API requests) and
  :func:`record_context` (stream and queue records) add ``org_id``.
* :func:`tracer` — X-Ray through Powertools ``Tracer``, with botocore patched so every
  DynamoDB and SQS call is a subsegment. Built on the first traced invocation, and never
  where tracing is off (``POWERTOOLS_TRACE_DISABLED``, outside Lambda, ``sam local``): there
  ``aws_xray_sdk`` is not even imported, so importing a handler costs nothing more.
* :data:`metrics` — CloudWatch embedded metric format (EMF), namespace
  ``POWERTOOLS_METRICS_NAMESPACE`` (``Contacts``), dimension ``service``. The domain counts
  outcomes with :func:`count` where it knows them; :func:`observed` flushes them as one EMF
  line at the end of the invocation.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from contacts_core.runtime import resume_collection

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

DEFAULT_SERVICE = "contacts"  # template.yaml sets both through the environment
DEFAULT_NAMESPACE = "Contacts"
TRACED_MODULES = ("botocore",)  # boto3's clients are botocore's: DynamoDB and SQS calls

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME") or DEFAULT_SERVICE
logger = Logger(service=SERVICE)
metrics = Metrics(service=SERVICE,
                  namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or DEFAULT_NAMESPACE)
# Powertools' Metrics keeps one process-wide set, not thread-safe: a bulk request counts
# from its writer threads, and a process serving requests from threads (the in-process
# test harness) must not flush a set while another thread adds to it or checks it.
_metrics_lock = threading.Lock()


class Metric(StrEnum):
    """The application metrics (EMF, unit Count) and what one unit means."""

    CONTACTS_CREATED = "ContactsCreated"  # a contact created (create, upsert, bulk)
    CONTACTS_UPDATED = "ContactsUpdated"  # a contact changed (PATCH, upsert, bulk)
    CONTACTS_UNCHANGED = "ContactsUnchanged"  # a write that found every value in place
    CONTACTS_MERGED = "ContactsMerged"  # a merge done (not its repeats)
    IDENTITY_CONFLICTS = "IdentityConflicts"  # a 409 identity_conflict, or a bulk item's
    WEBHOOKS_DELIVERED = "WebhookDeliveriesDelivered"  # a 2xx from the endpoint
    WEBHOOKS_RETRIED = "WebhookDeliveriesRetried"  # a failed attempt that will be retried
    WEBHOOKS_DEAD_LETTERED = "WebhookDeliveriesDeadLettered"  # the last attempt failed
    WEBHOOKS_DROPPED = "WebhookDeliveriesDropped"  # endpoint deleted, disabled, or 410


def count(metric: Metric, value: int = 1) -> None:
    """Add ``value`` to ``metric`` in this invocation's EMF line (nothing when 0)."""
    if value:
        with _metrics_lock:
            metrics.add_metric(name=metric.value, unit=MetricUnit.Count, value=value)


def tracing_enabled() -> bool:
    """The rule Powertools applies: on in Lambda, off when ``POWERTOOLS_TRACE_DISABLED`` is
    true, outside Lambda (no ``LAMBDA_TASK_ROOT``) and under ``sam local``."""
    disabled = os.environ.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower()
    if disabled in ("1", "true", "yes", "on", "y", "t"):
        return False
    return bool(os.environ.get("LAMBDA_TASK_ROOT")) and not os.environ.get("AWS_SAM_LOCAL")


@functools.cache
def tracer() -> Tracer | None:
    """The process's Tracer, botocore patched; None where tracing is off (see module doc)."""
    if not tracing_enabled():
        return None
    from aws_lambda_powertools import Tracer

    return Tracer(patch_modules=TRACED_MODULES)


def bind_org(org_id: str) -> None:
    """Name the caller's org on every later log line of this invocation, on its EMF line
    (metadata, not a dimension) and on its trace (annotation, searchable)."""
    logger.append_keys(org_id=org_id)
    with _metrics_lock:
        metrics.add_metadata("org_id", org_id)
    traced = tracer()
    if traced is not None:
        traced.put_annotation("org_id", org_id)


@contextmanager
def record_context(org_id: str | None, correlation_id: str | None) -> Iterator[None]:
    """Log lines written while one stream or queue record is handled carry its org and
    correlation id; both are removed afterwards."""
    logger.append_keys(org_id=org_id)
    logger.set_correlation_id(correlation_id)
    try:
        yield
    finally:
        logger.remove_keys(["org_id", "correlation_id"])


def _flush_metrics() -> None:
    with _metrics_lock:
        if metrics.metric_set:
            metrics.flush_metrics()
        else:
            metrics.clear_metrics()  # metadata of an invocation that counted nothing


def observed(handler: Callable[..., Any] | None = None, *,
             correlation_id_path: str | None = None) -> Any:
    """Decorate a Lambda handler: Powertools log context (cleared per invocation, correlation
    id from ``correlation_id_path`` when given), X-Ray capture of the handler where tracing is
    on, and the invocation's metrics flushed as one EMF line when it ends (even on error).
    The first invocation's end also ends the cold start's pause of cyclic garbage
    collection (:func:`contacts_core.runtime.resume_collection`)."""
    if handler is None:
        return functools.partial(observed, correlation_id_path=correlation_id_path)
    inner: Callable[..., Any] = handler
    captured: list[Callable[..., Any]] = []

    def traced(event: Any, context: Any) -> Any:
        if not captured:
            active = tracer()
            captured.append(inner if active is None
                            else active.capture_lambda_handler(inner, capture_response=False))
        return captured[0](event, context)

    @logger.inject_lambda_context(correlation_id_path=correlation_id_path, clear_state=True)
    @functools.wraps(handler)
    def wrapper(event: Any, context: Any) -> Any:
        try:
            return traced(event, context)
        finally:
            _flush_metrics()
            resume_collection()  # the cold start ends with the first invocation

    return wrapper
