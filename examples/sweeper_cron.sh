#!/bin/sh
# Sweep orphaned sqs-rpc reply queues; run from cron. Example crontab line (every 15 minutes):
#
#   */15 * * * * /opt/app/examples/sweeper_cron.sh >> /var/log/sqs-rpc-sweep.log 2>&1
#
# Settings come from the environment (all optional):
#   SQS_RPC_PREFIX         queue name prefix to sweep        (default sqs-rpc-reply-)
#   SQS_RPC_MAX_DELETIONS  cap on deletions per run          (default 100)
#   AWS_REGION / AWS_PROFILE, or SQS_RPC_ENDPOINT_URL for a non-AWS endpoint
#   SQS_RPC                the command to run                (default sqs-rpc)
#
# Exit status is sqs-rpc's (`sqs-rpc sweep --help` lists them): 0 done, 1 another failure,
# 2 usage error, 5 SQS error (the queues could not be listed, no credentials, the endpoint is
# unreachable), 6 some queues could not be checked or deleted. flock (where installed) keeps
# runs from overlapping: it exits 1 when the previous run still holds the lock.
set -eu

lock="${TMPDIR:-/tmp}/sqs-rpc-sweep.lock"
set -- sweep --json \
    --prefix "${SQS_RPC_PREFIX:-sqs-rpc-reply-}" \
    --max-deletions "${SQS_RPC_MAX_DELETIONS:-100}"
if [ -n "${SQS_RPC_ENDPOINT_URL:-}" ]; then
    set -- "$@" --endpoint-url "$SQS_RPC_ENDPOINT_URL"
fi
if [ -n "${AWS_REGION:-}" ]; then
    set -- "$@" --region "$AWS_REGION"
fi
if [ -n "${AWS_PROFILE:-}" ]; then
    set -- "$@" --profile "$AWS_PROFILE"
fi

# shellcheck disable=SC2086  # SQS_RPC may be a command with arguments ("python -m sqs_rpc")
if command -v flock >/dev/null 2>&1; then
    exec flock --nonblock "$lock" ${SQS_RPC:-sqs-rpc} "$@"
fi
exec ${SQS_RPC:-sqs-rpc} "$@"
