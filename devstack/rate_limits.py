"""``contacts-rate-limit ORG [--rate N --burst N | --default]``: show or set an org's
rate-limit policy (SPEC §9.4).

Without options it prints the org's policy (its own, or the default of template.yaml).
The table is ``RATE_LIMITS_TABLE`` (or ``--table``), with plain boto3 configuration
(``AWS_ENDPOINT_URL_DYNAMODB`` or ``--endpoint-url`` when set, else AWS); with neither, the
running local stack (``make dev``, found through ``.dev/stack.json``).
API Gateway caches the authorizer's answer per key for up to 5 minutes, so a change
reaches keys already in use within that time.
"""

from __future__ import annotations

import argparse
import os
import sys

from botocore.exceptions import BotoCoreError, ClientError

from contacts_core.rate_limits import RateLimitStore, RatePolicy
from devstack.dynamodb_local import REPO_ROOT


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit status (0 ok, 1 AWS/DynamoDB error, 2 bad usage)."""
    parser = argparse.ArgumentParser(prog="contacts-rate-limit",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("org", help="organisation id")
    parser.add_argument("--rate", type=int, help="requests per second it may sustain")
    parser.add_argument("--burst", type=int, help="requests it may send at once")
    parser.add_argument("--default", action="store_true",
                        help="drop its own policy: back to the stage default")
    parser.add_argument("--table", help="RateLimits table (default: $RATE_LIMITS_TABLE)")
    parser.add_argument("--endpoint-url", help="DynamoDB endpoint "
                                               "(default: $AWS_ENDPOINT_URL_DYNAMODB)")
    args = parser.parse_args(argv)
    if args.endpoint_url:
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = args.endpoint_url
    table = args.table or os.environ.get("RATE_LIMITS_TABLE")
    if not table:
        try:
            table = _local_stack_table()
        except LookupError as exc:
            parser.error(f"{exc}; for a deployed stack set RATE_LIMITS_TABLE or pass --table")
    if (args.rate is None) != (args.burst is None) or (args.default and args.rate):
        parser.error("give --rate and --burst together, or --default alone")
    try:
        store = RateLimitStore(table=table)
        if args.default:
            store.set_policy(args.org, None)
        elif args.rate is not None:
            store.set_policy(args.org, RatePolicy(args.rate, args.burst))
        own = store.policy(args.org)
    except ValueError as exc:
        parser.error(str(exc))
    except (BotoCoreError, ClientError) as exc:
        print(f"contacts-rate-limit: error: {exc}", file=sys.stderr)
        return 1
    policy = own or RatePolicy.default()
    print(f"{args.org}: {policy.rate}/s, burst {policy.burst}"
          f" ({'its own policy' if own else 'the default'})")
    return 0


def _local_stack_table() -> str:
    """Point boto3 at the running local stack; its RateLimits table's local name.

    Raises:
        LookupError: no local stack is running (``NoLocalStack`` is one).
    """
    from devstack.state import use_local_stack
    from devstack.tables import local_table

    use_local_stack()
    return local_table("RATE_LIMITS_TABLE", REPO_ROOT / "template.yaml")


if __name__ == "__main__":
    sys.exit(main())
