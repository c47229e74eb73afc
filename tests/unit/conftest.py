"""Unit tests run without an SQS server: a test here that asks for one fails at setup."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def endpoint() -> None:
    pytest.fail("a unit test has no SQS server: move a test that needs one to tests/integration")
