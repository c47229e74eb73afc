"""Integration tests: real SQS over HTTP through the conftest fixtures; fast."""
