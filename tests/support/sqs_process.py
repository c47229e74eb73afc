"""moto's SQS-compatible server (sqs-rpc's EmbeddedSqs) in a process of its own.

    python -m tests.support.sqs_process [--port PORT]

Prints its endpoint URL on stdout and serves until its stdin closes (or it is killed). The soak,
receive_race and the benchmarks run it apart so that it does not share a GIL with the callers
and its CPU and memory are measured apart; the restart test kills it and starts a new one on
the same port, which is what an SQS server that restarts and loses its state looks like.
"""

from __future__ import annotations

import argparse
import sys

from sqs_rpc import EmbeddedSqs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0, help="TCP port; 0 (default): a free one")
    args = parser.parse_args()
    with EmbeddedSqs(port=args.port) as sqs:
        print(sqs.endpoint_url, flush=True)
        sys.stdin.read()  # the parent closes our stdin to stop us


if __name__ == "__main__":
    main()
