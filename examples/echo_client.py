"""Call the echo server.

python examples/echo_client.py QUEUE_URL [--endpoint-url URL] [--region REGION]
"""

from __future__ import annotations

import argparse

from sqs_rpc import RpcClient


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("queue_url")
    parser.add_argument("--endpoint-url")
    parser.add_argument("--region")
    parser.add_argument("--calls", type=int, default=3)
    args = parser.parse_args()
    with RpcClient(endpoint_url=args.endpoint_url, region_name=args.region) as client:
        for i in range(args.calls):
            print(client.call(args.queue_url, {"n": i}, timeout=10))


if __name__ == "__main__":
    main()
