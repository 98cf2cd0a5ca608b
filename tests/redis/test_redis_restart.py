"""A redis-server killed and restarted under a running client and guard: nothing dies, nothing is written
without its record, and tokens, plans and records come back (the append-only file)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from bitrix24_agent_tools.client import Bitrix24
from bitrix24_agent_tools.confirmers import AutoConfirmer
from bitrix24_agent_tools.guard import Guard, Policy
from bitrix24_agent_tools.sandbox import Portal
from bitrix24_agent_tools.stores.redis import RedisIdempotencyStore, RedisLimiter, RedisTokenStore
from bitrix24_agent_tools.toolbox import Toolbox


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(port: int, workdir: Path) -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server not installed")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
         "--appendfsync", "always", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    import redis

    for _ in range(100):
        try:
            redis.Redis(port=port).ping()
            return proc
        except redis.ConnectionError:
            time.sleep(0.05)
    proc.kill()
    pytest.fail("redis-server did not start")


def test_a_redis_restart_is_waited_out_and_loses_no_record(tmp_path: Path) -> None:
    port, url = _port(), ""
    url = f"redis://127.0.0.1:{port}/0"
    server = _start(port, tmp_path)
    try:
        portal = Portal(seed=1)
        app = portal.register_app()
        tokens = portal.install_app(app)
        auth = portal.app_auth(app, tokens, token_store=RedisTokenStore.from_url(url))
        client = Bitrix24(auth, transport=portal.transport(), limiter=RedisLimiter.from_url(url))
        guard = Guard(Policy.writer(), AutoConfirmer(), idempotency=RedisIdempotencyStore.from_url(url))
        box = Toolbox(client, packs=("core",), guard=guard)
        assert not box.run("b24_task_create", {"title": "before"}).is_error
        server.kill()
        server.wait(5)
        # Redis is down: reads go on (the rate bucket degrades to this process), writes are not sent
        assert client.call("crm.deal.get", {"id": 1}).result["ID"] == "1"
        down = box.run("b24_task_create", {"title": "while down"})
        assert down.is_error and "unreachable" in down.content
        server = _start(port, tmp_path)
        assert not box.run("b24_task_create", {"title": "after"}).is_error
        repeat = box.run("b24_task_create", {"title": "before"})  # its record survived the restart
        assert repeat.is_error and "already made" in repeat.content
        titles = [t["title"] for t in portal.entities("task")]
        assert titles.count("before") == 1 and titles.count("after") == 1 and "while down" not in titles
        assert RedisTokenStore.from_url(url).load(auth.store_key) is not None  # no reinstall needed
    finally:
        server.kill()
        server.wait(5)
