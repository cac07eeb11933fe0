"""``python -m devstack.build``: this checkout's ``sam build`` for the local machine
(``Architecture`` of the host), finished as it ships (:mod:`devstack.ship`), under the
checkout's build lock (``.aws-sam/build.lock``, :func:`devstack.stack.build_lock`).

``make build`` (and with it ``make dev`` and ``make test``) and ``make invoke`` build
through it, as a stack started with a build does, so two of them started together take
turns instead of writing into ``.aws-sam/build`` at once.
"""

from __future__ import annotations

import subprocess
import sys

from devstack.stack import sam_build


def main() -> int:
    """Build; the exit status is ``sam build``'s (0 when it and the finishing succeeded)."""
    try:
        sam_build()
    except subprocess.CalledProcessError as err:
        return err.returncode or 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
