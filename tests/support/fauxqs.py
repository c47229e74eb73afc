"""fauxqs, the second SQS implementation: install it from npm and run it on 127.0.0.1.

fauxqs is an SQS emulator written in TypeScript, independently of moto. It needs Node >= 22.5;
npm provides that too (the ``node`` package pinned in ``fauxqs/package.json``), so neither a
system Node nor Docker is needed.

Usage::

    python -m tests.support.fauxqs install            # npm install into tests/support/fauxqs/
    python -m tests.support.fauxqs run -- python -m pytest -m "not embedded_server"

``run`` starts the server on a free port, runs the command with ``SQS_RPC_TEST_ENDPOINT``,
``SQS_RPC_TEST_SERVER=fauxqs`` and ``SQS_RPC_TEST_SERVER_PID`` set, stops the server, and exits
with the command's status.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from tests.support.started import Started

__all__ = ["FAUXQS_DIR", "FauxqsServer", "install"]

FAUXQS_DIR = Path(__file__).resolve().parent / "fauxqs"
START_TIMEOUT = 60.0


def _node() -> Path:
    return FAUXQS_DIR / "node_modules" / ".bin" / "node"


def install() -> None:
    """``npm install`` fauxqs and Node 22 into ``tests/support/fauxqs/node_modules``."""
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not on PATH; install Node.js and npm (any version) first")
    subprocess.run(
        [npm, "install", "--no-fund", "--no-audit", "--no-package-lock", "--loglevel=error"],
        cwd=FAUXQS_DIR,
        check=True,
    )


class FauxqsServer(Started):
    """fauxqs in a child process, bound to 127.0.0.1 on a free port.

    Example::

        with FauxqsServer() as server:
            sqs = boto3.client("sqs", endpoint_url=server.endpoint_url, ...)
    """

    def __init__(self) -> None:
        self._process: subprocess.Popen[str] | None = None
        self.endpoint_url = ""

    def start(self) -> None:
        if not _node().exists():
            raise RuntimeError(
                "fauxqs is not installed: run python -m tests.support.fauxqs install"
            )
        process = subprocess.Popen(
            [str(_node()), "--no-warnings", str(FAUXQS_DIR / "launch.mjs")],
            cwd=FAUXQS_DIR,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._process = process
        assert process.stdout is not None
        # The launcher prints its URL first; read it on a thread so a hung start has a deadline.
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(process.stdout.readline()))  # type: ignore[union-attr]
        reader.start()
        reader.join(START_TIMEOUT)
        if not line or not line[0].startswith("http://127.0.0.1:"):
            self.stop()
            raise RuntimeError(f"fauxqs did not start within {START_TIMEOUT:g}s: {line!r}")
        self.endpoint_url = line[0].strip()

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs (for CPU measurements), else None."""
        return None if self._process is None else self._process.pid

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


def main(argv: list[str]) -> int:
    if argv[:1] == ["install"]:
        install()
        return 0
    if argv[:1] == ["run"] and len(argv) > 2 and argv[1] == "--":
        with FauxqsServer() as server:
            print(f"fauxqs listening on {server.endpoint_url}", flush=True)
            env = {
                **os.environ,
                "SQS_RPC_TEST_ENDPOINT": server.endpoint_url,
                "SQS_RPC_TEST_SERVER": "fauxqs",
                "SQS_RPC_TEST_SERVER_PID": str(server.pid),
                "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
                "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
            }
            return subprocess.run(argv[2:], env=env, check=False).returncode
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
