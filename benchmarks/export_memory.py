"""Peak memory of exporting N deals: ``export_stream()`` (rows handed over and dropped) against ``export()``
(a list). In-process sandbox; tracemalloc peak above the baseline taken after the portal is built. `python -m
benchmarks.export_memory [--deals N] [--runs R]`"""

from __future__ import annotations

import statistics
import sys
import tracemalloc

from bitrix24_agent_tools.client import Bitrix24, NoLimiter
from bitrix24_agent_tools.sandbox import Portal


def _peak_mb(portal: Portal, stream: bool) -> tuple[float, int]:
    client = Bitrix24(portal.webhook_url, transport=portal.transport(), limiter=NoLimiter())
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    if stream:
        count = sum(
            1 for _ in client.export_stream("crm.deal.list", {"select": ["ID", "TITLE", "OPPORTUNITY"]})
        )
    else:
        count = len(client.export("crm.deal.list", {"select": ["ID", "TITLE", "OPPORTUNITY"]}))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    client.close()
    return (peak - base) / 2**20, count


def main(argv: list[str] | None = None) -> dict[str, float]:
    argv = list(sys.argv[1:] if argv is None else argv)
    deals = int(argv[argv.index("--deals") + 1]) if "--deals" in argv else 100_000
    runs = int(argv[argv.index("--runs") + 1]) if "--runs" in argv else 2
    portal = Portal(seed=1, deals=deals)
    figures: dict[str, float] = {}
    for stream in (True, False):
        peaks = []
        for _ in range(runs):
            peak, count = _peak_mb(portal, stream)
            assert count == deals, (count, deals)
            peaks.append(peak)
        name = "export_stream()" if stream else "export() list"
        print(
            f"{name:16} {deals} deals: peak {statistics.median(peaks):6.1f} MB above baseline "
            f"(min {min(peaks):.1f}, max {max(peaks):.1f}, {runs} runs)"
        )
        figures["stream_peak_mb" if stream else "list_peak_mb"] = statistics.median(peaks)
    return figures


if __name__ == "__main__":
    main()
