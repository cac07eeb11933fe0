"""S3 ``ObjectCreated`` under ``uploads/`` → the import job runs (queued on ImportQueue).

An asynchronous invocation: an exception makes Lambda retry the event (twice), and
:func:`start_upload` is safe to repeat. Keys that are not an upload key are skipped.
"""

from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import S3Event

from contacts_core.imports.files import parse_upload_key
from contacts_core.imports.operations import start_upload
from contacts_core.observability import logger, observed


@observed
def handler(event: dict[str, Any], context: Any) -> None:
    for record in S3Event(event).records:
        key = unquote_plus(record.s3.get_object.key)  # S3 events URL-encode keys
        upload = parse_upload_key(key)
        if upload is None:
            logger.warning("not an upload key", key=key)
            continue
        org_id, import_id = upload
        start_upload(org_id, import_id, record.s3.get_object.size, record.s3.get_object.etag)
