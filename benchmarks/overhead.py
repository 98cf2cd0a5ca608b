"""What the tool wrapper and the guard add to a read and to a confirmed write (in-process transport, median
µs).

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


def one_run(n: int) -> dict[str, float]:
    portal = Portal(seed=1)
    client = Bitrix24(portal.webhook_url, transport=portal.transport(), limiter=NoLimiter())
    lean = Toolbox(client, guard=Guard(Policy.writer(), approve_all, fetch_current=False))
    default = Toolbox(
        client, guard=Guard(Policy.writer(), approve_all)
    )  # the default: current values fetched
    counter = iter(range(10**9))
    raw_read = median_us(lambda: client.call("crm.deal.get", {"id": 3}), n)
    tool_read = median_us(lambda: lean.run("b24_crm_get", {"entity": "deal", "id": 3}), n)
    raw_write = median_us(
        lambda: client.call("crm.deal.update", {"id": 3, "fields": {"TITLE": f"t{next(counter)}"}}), n
    )
    lean_write = median_us(
        lambda: lean.run(
            "b24_crm_update", {"entity": "deal", "id": 3, "fields": {"TITLE": f"t{next(counter)}"}}
        ),
        n,
    )
    default_write = median_us(
        lambda: default.run(
            "b24_crm_update", {"entity": "deal", "id": 3, "fields": {"TITLE": f"t{next(counter)}"}}
        ),
        n,
    )
    return {
        "raw_read": raw_read,
        "read": tool_read - raw_read,
        "raw_write": raw_write,
        "write_lean": lean_write - raw_write,
        "write_default": default_write - raw_write,
    }


def main(argv: list[str] | None = None, n: int = 400, runs: int = 3) -> dict[str, float]:
    results = [one_run(n) for _ in range(runs)]

    def spread(key: str) -> str:
        values = sorted(r[key] for r in results)
        return f"{statistics.median(values):7.0f}µs ({values[0]:.0f}–{values[-1]:.0f})"

    print(
        f"median over {n} calls per run, {runs} runs (median and range), in-process sandbox; overhead = "
        "tool+guard "
        "minus client.call of the same method"
    )
    print(f"{'client.call read (crm.deal.get)':52} {spread('raw_read')}")
    print(f"{'overhead, read':52} {spread('read')}")
    print(f"{'client.call write (crm.deal.update)':52} {spread('raw_write')}")
    print(f"{'overhead, confirmed write (fetch_current=False)':52} {spread('write_lean')}")
    print(f"{'overhead, confirmed write (default: current values read)':52} {spread('write_default')}")
    return {
        "read_overhead_us": statistics.median(r["read"] for r in results),
        "write_overhead_us": statistics.median(r["write_default"] for r in results),
    }


if __name__ == "__main__":
    main()
