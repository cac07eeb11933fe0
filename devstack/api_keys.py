"""``contacts-api-key``: mint, list and revoke API keys.

    contacts-api-key --org ORG [--name NAME]      mint (also: ``mint --org ORG``)
    contacts-api-key list ORG                     the org's keys: id, name, created, revoked
    contacts-api-key revoke KEY_ID                the authorizer refuses the key from then on

Where the keys are: with ``--table`` or ``API_KEYS_TABLE`` set, that table through plain
boto3 configuration (your AWS profile and region, or ``--endpoint-url`` /
``AWS_ENDPOINT_URL_DYNAMODB``). Otherwise the running local stack (``make dev``), found
through its state file ``.dev/stack.json``: its DynamoDB Local endpoint, table, region and
fake credentials, no variables needed. A minted key goes to stdout alone (only its SHA-256
is stored) with its id on stderr; messages go to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

LAYER_SOURCE = Path(__file__).resolve().parent.parent / "layers" / "contacts_core"
COMMANDS = ("mint", "list", "revoke")


def load_auth() -> ModuleType:
    """``contacts_core.auth``, from the installed package or the layer source."""
    try:
        import contacts_core.auth as auth
    except ModuleNotFoundError as exc:
        if exc.name not in ("contacts_core", "contacts_core.auth"):
            raise
        sys.path.insert(0, str(LAYER_SOURCE))
        import contacts_core.auth as auth
    return auth


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line; ``--org X`` without a command means ``mint --org X``."""
    parser = argparse.ArgumentParser(
        prog="contacts-api-key", description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[2:]))
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--table", help="ApiKeys table name (default: $API_KEYS_TABLE, else "
                                        "the local stack's)")
    common.add_argument("--endpoint-url",
                        help="DynamoDB endpoint (default: $AWS_ENDPOINT_URL_DYNAMODB)")
    commands = parser.add_subparsers(dest="command", required=True)
    mint = commands.add_parser("mint", parents=[common], help="mint a key (printed once)")
    mint.add_argument("--org", required=True, help="organisation id the key authenticates as")
    mint.add_argument("--name", default="default", help="label stored with the key")
    listing = commands.add_parser("list", parents=[common], help="list an org's keys")
    listing.add_argument("org", help="organisation id")
    listing.add_argument("--json", action="store_true", help="one JSON document")
    revoke = commands.add_parser("revoke", parents=[common], help="revoke a key by its id")
    revoke.add_argument("key_id", help="the key's id (key_ + 16 hex), from mint or list")
    if argv and argv[0] not in (*COMMANDS, "-h", "--help"):
        argv = ["mint", *argv]  # the original form: contacts-api-key --org X --name Y
    return parser.parse_args(argv)


def configure(args: argparse.Namespace) -> str:
    """Point boto3 at the keys' table; returns a description of where that is.

    Raises:
        LookupError: no table given and no local stack running (the message says what to do).
    """
    if args.table:
        os.environ["API_KEYS_TABLE"] = args.table
    if args.endpoint_url:
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = args.endpoint_url
    if os.environ.get("API_KEYS_TABLE"):
        where = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or "AWS"
        return f"{os.environ['API_KEYS_TABLE']} ({where})"
    from devstack.state import NoLocalStack, use_local_stack

    try:
        state = use_local_stack()
    except NoLocalStack as exc:
        raise LookupError(
            f"{exc}.\nFor a deployed stack, set API_KEYS_TABLE (stack output "
            "ApiKeysTableName) or pass --table, with your usual AWS profile and region.") from None
    os.environ["API_KEYS_TABLE"] = state["api_keys_table"]
    return f"{state['api_keys_table']} (local stack at {state['dynamodb_endpoint']})"


def _print_keys(keys: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print(json.dumps(keys, indent=2))
        return
    print(f"{'KEY ID':<21} {'CREATED':<25} {'STATUS':<32} NAME")
    for key in keys:
        status = f"revoked {key.get('revoked_at', '')}".strip() if key.get("revoked") \
            else "active"
        print(f"{key['key_id']:<21} {key.get('created_at', ''):<25} {status:<32} "
              f"{key.get('name', '')}")


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit status (0 ok, 1 AWS/DynamoDB error or unknown key,
    2 bad usage or nowhere to write)."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        where = configure(args)
    except LookupError as exc:
        print(f"contacts-api-key: {exc}", file=sys.stderr)
        return 2
    auth = load_auth()
    try:
        if args.command == "mint":
            key = auth.mint_api_key(args.org, args.name)
            print(key)
            print(f"API key {auth.key_id_for(auth.hash_api_key(key))} for org {args.org!r} "
                  f"stored in {where}; it is shown only once.", file=sys.stderr)
        elif args.command == "list":
            keys = auth.list_api_keys(args.org)
            _print_keys(keys, args.json)
            print(f"{len(keys)} key(s) of org {args.org!r} in {where}", file=sys.stderr)
        else:
            revoked = auth.revoke_api_key(args.key_id)
            if revoked is None:
                print(f"contacts-api-key: no key {args.key_id!r} in {where}", file=sys.stderr)
                return 1
            print(json.dumps(revoked))
            print(f"revoked {args.key_id} (org {revoked.get('org_id')!r}); on AWS the "
                  "authorizer's cache may accept it for up to 5 minutes", file=sys.stderr)
    except (BotoCoreError, ClientError) as exc:
        print(f"contacts-api-key: error: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:  # an org id mint_api_key refuses
        print(f"contacts-api-key: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
