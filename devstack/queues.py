"""SQS queues of template.yaml on a local SQS endpoint (moto server), and the function
environment that points at them.

Queue names are the logical ids (``WebhookDeliveryQueue.fifo`` for FIFO queues); redrive
policies are created as declared, dead-letter queues first. SAM resolves ``!Ref Queue``
in environment variables to the logical id and ``!GetAtt Queue.Arn`` to a placeholder ARN
ending in the logical id; :func:`resolve_queue_refs` turns both into the local URL/ARN.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from devstack.aws import local_client
from devstack.tables import load_template

QUEUE_TYPE = "AWS::SQS::Queue"


def queue_definitions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{logical_id: Properties}`` of every SQS queue in a loaded template."""
    return {lid: r.get("Properties") or {} for lid, r in template["Resources"].items()
            if r.get("Type") == QUEUE_TYPE}


def _logical_id(reference: str) -> str:
    return reference.rsplit(":", 1)[-1]


def sqs_client(endpoint_url: str) -> Any:
    """An SQS client for the local endpoint with fake credentials."""
    return local_client("sqs", endpoint_url)


def create_queues(template_path: Path, endpoint_url: str) -> dict[str, str]:
    """Create the template's queues (idempotent); returns ``{logical_id: queue_url}``."""
    definitions = queue_definitions(load_template(template_path))
    client = sqs_client(endpoint_url)
    urls: dict[str, str] = {}

    def create(logical_id: str) -> str:
        if logical_id in urls:
            return urls[logical_id]
        props = definitions[logical_id]
        copied = ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds")
        attributes: dict[str, str] = {k: str(props[k]) for k in copied if k in props}
        name = logical_id
        if props.get("FifoQueue"):
            name += ".fifo"
            attributes["FifoQueue"] = "true"
        redrive = props.get("RedrivePolicy")
        if redrive:
            target = create(_logical_id(redrive["deadLetterTargetArn"]))
            arn = client.get_queue_attributes(QueueUrl=target, AttributeNames=["QueueArn"])
            attributes["RedrivePolicy"] = json.dumps({
                "deadLetterTargetArn": arn["Attributes"]["QueueArn"],
                "maxReceiveCount": str(redrive["maxReceiveCount"])})
        urls[logical_id] = client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        return urls[logical_id]

    for logical_id in definitions:
        create(logical_id)
    return urls


def resolve_queue_refs(environment: dict[str, str], urls: dict[str, str]) -> dict[str, str]:
    """Environment values that name a queue (``!Ref``) replaced by its local URL."""
    return {k: urls.get(v, v) for k, v in environment.items()}
