"""What the tool wrapper and the guard add to a read and to a confirmed write (in-process transport, median µs).

    python -m benchmarks.overhead
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from bitrix24_agent_tools.client import Bitrix24, NoLimiter
from bitrix24_agent_tools.confirmers import approve_all
from bitrix24_agent_tools.guard import Guard, Policy
from bitrix24_agent_tools.sandbox import Portal
from bitrix24_agent_tools.toolbox import Toolbox


def median_us(fn: Callable[[], object], n: int) -> float:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e6)
    return statistics.median(samples)


def main(argv: list[str] | None = None, n: int = 400) -> dict[str, float]:
    portal = Portal(seed=1)
    client = Bitrix24(portal.webhook_url, transport=portal.transport(), limiter=NoLimiter())
    box = Toolbox(client, guard=Guard(Policy.writer(), approve_all, fetch_current=False))
    raw_read = median_us(lambda: client.call("crm.deal.get", {"id": 3}), n)
    tool_read = median_us(lambda: box.run("b24_crm_get", {"entity": "deal", "id": 3}), n)
    counter = iter(range(10**9))
    raw_write = median_us(lambda: client.call("crm.deal.update", {"id": 3, "fields": {"TITLE": f"t{next(counter)}"}}), n)
    tool_write = median_us(lambda: box.run("b24_crm_update", {"entity": "deal", "id": 3, "fields": {"TITLE": f"t{next(counter)}"}}), n)
    print(f"median over {n} calls, in-process sandbox (the portal's own work included in both columns)")
    print(f"{'':22} {'client.call':>12} {'tool+guard':>11} {'overhead':>9}")
    print(f"{'read (crm.deal.get)':22} {raw_read:10.0f}µs {tool_read:9.0f}µs {tool_read - raw_read:7.0f}µs")
    print(f"{'confirmed write':22} {raw_write:10.0f}µs {tool_write:9.0f}µs {tool_write - raw_write:7.0f}µs")
    return {"read_overhead_us": tool_read - raw_read, "write_overhead_us": tool_write - raw_write}


if __name__ == "__main__":
    main()
