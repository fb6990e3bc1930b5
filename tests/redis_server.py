"""
A real redis-server on a free loopback port, for tests.

Import the fixtures into a test module to use them. Without redis-server the
tests that need it are skipped, except on CI (``$CI`` set), where they fail.
"""

from __future__ import annotations

import os
import shutil
import socket

import pytest

from .loopback import LoopbackServer, unavailable


class RedisServer(LoopbackServer):
    """
    One redis-server process, without persistence.
    """

    def __init__(self, executable: str, directory: str) -> None:
        super().__init__(executable)
        self.directory = directory

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        return [
            self.executable,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", self.directory,
            "--daemonize", "no",
        ]  # fmt: skip

    def answers(self) -> bool:
        try:
            with socket.create_connection(
                ("127.0.0.1", self.port), timeout=0.2
            ) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False


def _executable() -> str:
    executable = shutil.which("redis-server")
    if executable is None:
        unavailable("redis-server is not installed (apt-get install redis-server)")
    return executable


@pytest.fixture(name="redis_url", scope="session")
def _redis_url(tmp_path_factory: pytest.TempPathFactory) -> object:
    """
    The URL of a redis-server shared by the whole session.
    """
    server = RedisServer(_executable(), str(tmp_path_factory.mktemp("redis")))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(name="redis_server")
def _redis_server(tmp_path: object) -> object:
    """
    A redis-server of the test's own, which the test may kill.
    """
    server = RedisServer(_executable(), str(tmp_path))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(name="prefix")
def _prefix() -> str:
    """
    A Redis key prefix of the test's own, on the shared server.
    """
    return f"jobstamps-test-{os.urandom(6).hex()}:"
