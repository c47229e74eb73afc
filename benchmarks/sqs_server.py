"""Run the embedded SQS-compatible server in its own process (so it does not share a GIL with
the callers): prints its endpoint URL on stdout, serves until stdin closes."""

from __future__ import annotations

import sys

from sqs_rpc import EmbeddedSqs


def main() -> None:
    with EmbeddedSqs() as sqs:
        print(sqs.endpoint_url, flush=True)
        sys.stdin.read()  # the parent closes our stdin to stop us


if __name__ == "__main__":
    main()
