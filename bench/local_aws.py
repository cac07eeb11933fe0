"""The AWS services a benchmark's functions need besides DynamoDB, on a local moto server.

:func:`local_aws` starts one moto server in this process (devstack's quiet
:class:`~devstack.stack.SqsServer`), creates template.yaml's KMS keys and Secrets Manager
secrets on it (the cursor key ring, the webhook secrets key) and, if asked, its SQS queues,
then points ``os.environ`` at them as the local stack and the tests do: ``!Ref`` values
replaced by the local key ids / ARNs / queue URLs, ``AWS_ENDPOINT_URL_*`` for KMS, Secrets
Manager and SQS. Call it after the template's function environment is in ``os.environ``
(:func:`bench.bulk_upsert.environment`); subprocesses started inside inherit it all.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from devstack.keys import local_environment
from devstack.queues import create_queues, resolve_queue_refs
from devstack.stack import SqsServer


@contextmanager
def local_aws(template: Path, queues: bool = False) -> Iterator[str]:
    """Keys, secrets (and with ``queues``, SQS queues) of ``template`` on a moto server
    running for the ``with`` block; yields its endpoint URL."""
    server = SqsServer()
    server.start()
    try:
        endpoint = server.endpoint_url
        env = local_environment(template, endpoint, dict(os.environ))
        if queues:
            env = resolve_queue_refs(env, create_queues(template, endpoint))
            env["AWS_ENDPOINT_URL_SQS"] = endpoint
        os.environ.update(env)
        yield endpoint
    finally:
        server.stop()
