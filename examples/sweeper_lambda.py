"""A scheduled AWS Lambda that sweeps orphaned sqs-rpc reply queues.

Deploy with sqs-rpc in the package (``pip install sqs-rpc -t build/``), handler
``sweeper_lambda.handler``, and an EventBridge schedule such as ``rate(15 minutes)``. The
function's role needs the sweeper policy from docs/operations.md. Settings (all optional):
``SQS_RPC_PREFIX`` (default ``sqs-rpc-reply-``), ``SQS_RPC_MAX_DELETIONS`` (default 100),
``SQS_RPC_DRY_RUN`` (``1`` to only report), ``SQS_RPC_ENDPOINT_URL`` (a non-AWS endpoint).

Run it locally: ``python examples/sweeper_lambda.py`` prints the report as JSON.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from sqs_rpc import Sweeper

logging.getLogger("sqs_rpc").setLevel(logging.INFO)  # Lambda sends INFO logs to CloudWatch


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Sweep once; return the counts and what was deleted (the full report is logged)."""
    sweeper = Sweeper(
        reply_queue_prefix=os.environ.get("SQS_RPC_PREFIX", "sqs-rpc-reply-"),
        max_deletions=int(os.environ.get("SQS_RPC_MAX_DELETIONS", "100")),
        dry_run=os.environ.get("SQS_RPC_DRY_RUN") == "1",
        endpoint_url=os.environ.get("SQS_RPC_ENDPOINT_URL") or None,
    )
    report = sweeper.sweep().to_dict()
    if report["errors"]:
        # Fail the invocation so that the Lambda error metric (and its alarm) sees it.
        raise RuntimeError(f"sweep finished with {report['errors']} errors: {report}")
    deleted = [d["queue_url"] for d in report["decisions"] if d["action"] != "kept"]
    return {key: report[key] for key in ("checked", "deleted", "kept", "dry_run")} | {
        "deleted_urls": deleted
    }


if __name__ == "__main__":
    print(json.dumps(handler({}, None)))
