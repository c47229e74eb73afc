"""Unit tests: no SQS server (the ``endpoint`` fixture fails here; see conftest.py)."""
