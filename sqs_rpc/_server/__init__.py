"""The serving side: :class:`MessagePoller`, its receiver, dispatcher and outbox.

The dispatcher decides what happens to each request (the decision table); the outbox batches
replies and deletes; the Lambda responder reuses the dispatcher inside a Lambda function.
"""
