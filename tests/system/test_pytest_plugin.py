"""sqs_rpc.pytest_plugin in a user's own pytest run: a whole pytest process, with its own
embedded server, using the plugin's fixtures (the rest of sqs_rpc.testing: in
tests/integration/test_testing.py).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest


@pytest.mark.embedded_server
@pytest.mark.timeout(180)
def test_pytest_plugin_gives_users_fixtures(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["sqs_rpc.pytest_plugin"]\n')
    (tmp_path / "test_user.py").write_text(
        textwrap.dedent(
            """
            from typing import Any

            import pytest

            from sqs_rpc import IncomingMessage, MessageHandler, RemoteError, RpcClient


            class Orders(MessageHandler):
                def handle(self, message: IncomingMessage) -> Any:
                    if message.body < 0:
                        raise ValueError("negative")
                    return message.body * 10


            def test_serve(sqs_rpc_serve) -> None:
                rpc = sqs_rpc_serve(Orders())
                assert rpc.call(4) == 40
                with pytest.raises(RemoteError, match="negative"):
                    rpc.call(-1)


            def test_two_servers(sqs_rpc_serve) -> None:
                first, second = sqs_rpc_serve(Orders()), sqs_rpc_serve(Orders(), fifo=True)
                assert first.call(1) == 10
                assert second.call(2, group_id="g") == 20


            def test_client_and_queue(sqs_rpc_client: RpcClient, sqs_rpc_queue: str) -> None:
                sqs_rpc_client.publish(sqs_rpc_queue, {"event": 1})
                assert sqs_rpc_queue.startswith("http://127.0.0.1:")


            def test_endpoint_is_shared(sqs_rpc_endpoint, sqs_rpc_queue: str) -> None:
                assert sqs_rpc_queue.startswith(sqs_rpc_endpoint.endpoint_url)
            """
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout
