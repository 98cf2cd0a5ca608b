"""A fast, exactly-once export of 20,000 deals with a progress bar, under the standard plan's rate limit.

python examples/export_progress.py
"""

from __future__ import annotations

import time

from tqdm import tqdm

from bitrix24_agent_tools import Bitrix24
from bitrix24_agent_tools.sandbox import Portal


def main() -> int:
    portal = Portal(seed=1, deals=20_000, rate_limit="standard")
    with (
        portal.serve() as server,
        Bitrix24(server.webhook_url) as client,
        tqdm(total=20_000, unit="deal") as bar,
    ):
        started = time.perf_counter()

        def progress(done: int, total: int | None) -> None:
            bar.update(done - bar.n)

        rows = client.export("crm.deal.list", {"select": ["ID", "TITLE", "STAGE_ID"]}, progress=progress)
        seconds = time.perf_counter() - started
    ids = [int(r["ID"]) for r in rows]
    requests = len([r for r in portal.requests if r.method == "batch"])
    print(
        f"{len(ids)} deals in {seconds:.2f}s with {requests} HTTP requests; exactly once: "
        f"{sorted(ids) == list(range(1, 20_001))}"
    )
    return 0 if sorted(ids) == list(range(1, 20_001)) and portal.rejected["QUERY_LIMIT_EXCEEDED"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
