"""Run a MessageHandler as an AWS Lambda function fed by an SQS event source mapping.

Example::

    # orders_function.py; the function's handler setting is "orders_function.handler"
    from sqs_rpc import MessageHandler
    from sqs_rpc.aws_lambda import LambdaResponder

    class Orders(MessageHandler):
        def handle(self, message):
            return {"order": message.body["id"], "status": "shipped"}

    handler = LambdaResponder(Orders())

Turn on ``ReportBatchItemFailures`` on the event source mapping. ``docs/lambda.md`` has the
settings, the IAM permissions, and how to test a function locally with :func:`receive_event`
and :func:`delete_succeeded`.
"""

from __future__ import annotations

from ._server.lambda_event import delete_succeeded, receive_event
from ._server.lambda_responder import DEFAULT_MIN_REMAINING_TIME, LambdaResponder

__all__ = [
    "DEFAULT_MIN_REMAINING_TIME",
    "LambdaResponder",
    "delete_succeeded",
    "receive_event",
]
