"""The embedded SQS-compatible server (moto's) in its own process, for the soak.

    python -m reliability.soak_sqs

Prints its endpoint URL on stdout and serves until its stdin closes. In its own process it
does not share a GIL with the soak's orchestrator, and its memory is measured apart.
"""

from __future__ import annotations

import sys

from sqs_rpc import EmbeddedSqs


def main() -> None:
    with EmbeddedSqs() as sqs:
        print(sqs.endpoint_url, flush=True)
        sys.stdin.read()  # the parent closes our stdin to stop us


if __name__ == "__main__":
    main()
