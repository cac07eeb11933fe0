"""``contacts-api-key --org ORG [--name NAME]``: mint an API key and print it once.

The table is ``API_KEYS_TABLE`` (or ``--table``); the endpoint is plain boto3
behaviour: ``AWS_ENDPOINT_URL_DYNAMODB`` (or ``--endpoint-url``) when set, else real
AWS with the usual credentials and region. The key goes to stdout alone (only
its SHA-256 is stored); messages go to stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

LAYER_SOURCE = Path(__file__).resolve().parent.parent / "layers" / "contacts_core"


def load_minter() -> Callable[..., str]:
    """``contacts_core.auth.mint_api_key``, from the installed package or the layer source."""
    try:
        from contacts_core.auth import mint_api_key
    except ModuleNotFoundError as exc:
        if exc.name not in ("contacts_core", "contacts_core.auth"):
            raise
        sys.path.insert(0, str(LAYER_SOURCE))
        from contacts_core.auth import mint_api_key
    return mint_api_key


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit status (0 ok, 1 AWS/DynamoDB error, 2 bad usage)."""
    parser = argparse.ArgumentParser(prog="contacts-api-key", description=__doc__.splitlines()[0])
    parser.add_argument("--org", required=True, help="organisation id the key authenticates as")
    parser.add_argument("--name", default="default", help="label stored with the key")
    parser.add_argument("--table", help="ApiKeys table name (default: $API_KEYS_TABLE)")
    parser.add_argument(
        "--endpoint-url", help="DynamoDB endpoint (default: $AWS_ENDPOINT_URL_DYNAMODB)"
    )
    args = parser.parse_args(argv)
    if args.table:
        os.environ["API_KEYS_TABLE"] = args.table
    if args.endpoint_url:
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = args.endpoint_url
    if not os.environ.get("API_KEYS_TABLE"):
        parser.error("set API_KEYS_TABLE (stack output ApiKeysTableName) or pass --table")
    try:
        key = load_minter()(args.org, args.name)
    except (BotoCoreError, ClientError) as exc:
        print(f"contacts-api-key: error: {exc}", file=sys.stderr)
        return 1
    print(key)
    print(
        f"API key for org {args.org!r} stored in {os.environ['API_KEYS_TABLE']}; "
        "it is shown only once.",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
