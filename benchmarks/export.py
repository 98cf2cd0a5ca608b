"""Export a big deal list with several clients, side by side, against one sandbox under the standard plan.

    python -m benchmarks.export            # 100,000 deals
    python -m benchmarks.export --quick    # 10,000 deals

The sandbox enforces the standard plan's leaky bucket (2 req/s drain, burst 50) and the operating limit, and
charges a processing-cost model (printed). Batch-based clients export everything; page-by-page clients
(one HTTP request per 50 rows) are measured on the first --sample deals and extrapolated, because under the
standard plan a full run would take tens of minutes — which is itself the finding.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import time
from collections.abc import Callable
from typing import Any

from bitrix24_agent_tools.client import AsyncBitrix24, Bitrix24, LeakyBucketLimiter, RatePlan
from bitrix24_agent_tools.sandbox import CostModel, Portal

PARALLEL: int | None = None  # --parallel N; None: the client's default (from the plan's burst)
SYNC = False  # --sync: the synchronous client (apart mode)
COST = CostModel(round_trip=0.02, per_item=0.0002, count_cost=0.002, per_offset=0.001)


def _one_request(cost: CostModel) -> float:
    """One batch request of 50 pages of 50 rows: its round trip and its rows."""
    return cost.round_trip + 50 * cost.per_item * 50


def rate_bound(n: int, rate: float, burst: int, cost: CostModel) -> float:
    """What the plan alone allows: the probe, the last batch request admitted by the bucket, then
    processed."""
    rate_wait = max(0.0, (math.ceil(n / 2500) + 1 - burst) / rate)
    return cost.round_trip + rate_wait + _one_request(cost)


def lower_bound(n: int, rate: float, burst: int, cost: CostModel, concurrency: float = math.inf) -> float:
    """The best any client can do with ``concurrency`` requests in flight: one probe, then 50 pages of 50 rows
    per batch request, no COUNT, no offsets; never faster than the plan lets that many requests through."""
    rounds = 1 if math.isinf(concurrency) else math.ceil(math.ceil(n / 2500) / concurrency)
    return max(rate_bound(n, rate, burst, cost), cost.round_trip + rounds * _one_request(cost))


def operating_floor(n: int, rate: float, burst: int, cost: CostModel, limit: float = 480.0) -> float:
    """Where the operating limit binds (settings/performance/limits.md: ``limit`` seconds of processing per
    method in 10 minutes): the export's pages take ``n / 50`` times a page's processing; whatever exceeds one
    window's limit starts no earlier than a window later, each window freeing at most ``limit``."""
    spent = math.ceil(n / 50) * cost.seconds(50, False, 0)
    windows = max(0, math.ceil(spent / limit) - 1)
    return max(rate_bound(n, rate, burst, cost), windows * 600.0 + _one_request(cost))


def measure(
    name: str,
    portal: Portal,
    run: Callable[[], list[Any]],
    expected: set[int],
    *,
    sample: bool = False,
    budget: float = 180.0,
) -> dict[str, Any]:
    import concurrent.futures

    before = len(portal.requests)
    rejected = portal.rejected["QUERY_LIMIT_EXCEEDED"]
    start = time.perf_counter()
    error = ""
    pool = concurrent.futures.ThreadPoolExecutor(1)
    try:
        rows = pool.submit(run).result(timeout=budget)
    except concurrent.futures.TimeoutError:
        rows, error = [], f"did not finish within {budget:.0f}s"
    except Exception as exc:  # a peer failing is a result too
        rows, error = [], f"{type(exc).__name__}: {str(exc)[:80]}"
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    seconds = time.perf_counter() - start
    ids = [
        int(r["ID"] if isinstance(r, dict) and "ID" in r else r.get("id"))
        for r in rows
        if isinstance(r, dict)
    ]
    exact = len(ids) == len(set(ids)) and set(ids) == expected
    return {
        "client": name,
        "seconds": seconds,
        "requests": len(portal.requests) - before,
        "r503": portal.rejected["QUERY_LIMIT_EXCEEDED"] - rejected,
        "items": len(ids),
        "per_s": len(ids) / seconds if seconds else 0.0,
        "exact": exact,
        "sample": sample,
        "error": error,
    }


def _portal(n: int) -> Portal:
    return Portal(
        seed=1,
        deals=n,
        leads=0,
        contacts=20,
        companies=10,
        tasks=0,
        rate_limit="standard",
        operating_limit=480,
        cost_model=COST,
    )


def _serve_apart(n: int, conn: Any) -> None:
    """The sandbox in a child process: serves until told to stop; resets and counts on request."""
    portal = _portal(n)
    with portal.serve(https=True) as server:
        conn.send((server.webhook_url, str(server.cert_path)))
        while (command := conn.recv()) != "stop":
            if command == "reset":
                portal._bucket.clear()
                portal.reset_operating()
            conn.send(
                (
                    len(portal.requests),
                    portal.rejected["QUERY_LIMIT_EXCEEDED"],
                    portal.rejected["OPERATION_TIME_LIMIT"],
                )
            )


def apart(n: int, runs: int) -> dict[str, float]:
    """Our export against a sandbox in its own process: the client and the portal do not share one interpreter
    (and its lock), as they do not on a real portal."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    mine, theirs = context.Pipe()
    child = context.Process(target=_serve_apart, args=(n, theirs), daemon=True)
    child.start()
    url, cert = mine.recv()
    print(f"sandbox (its own process): {n:,} deals, standard plan, cost model as above")
    measured = []
    for _ in range(runs):
        mine.send("reset")
        before, rejected, blocked = mine.recv()

        async def go() -> list[Any]:
            limiter = LeakyBucketLimiter.for_plan(RatePlan.standard())
            async with AsyncBitrix24(url, verify=cert, limiter=limiter) as client:
                return await client.export("crm.deal.list", {"select": ["ID", "TITLE"]}, parallel=PARALLEL)

        def go_sync() -> list[Any]:
            limiter = LeakyBucketLimiter.for_plan(RatePlan.standard())
            with Bitrix24(url, verify=cert, limiter=limiter) as client:
                return client.export("crm.deal.list", {"select": ["ID", "TITLE"]}, parallel=PARALLEL)

        start = time.perf_counter()
        rows = go_sync() if SYNC else asyncio.run(go())
        seconds = time.perf_counter() - start
        mine.send("count")
        after, rejected_after, blocked_after = mine.recv()
        ids = [int(r["ID"]) for r in rows]
        measured.append(
            {
                "client": f"ours {'sync' if SYNC else 'async'} export() (apart, "
                f"parallel={PARALLEL or 'default'})",
                "seconds": seconds,
                "requests": after - before,
                "r503": rejected_after - rejected,
                "r429": blocked_after - blocked,
                "items": len(ids),
                "per_s": len(ids) / seconds,
                "exact": len(ids) == len(set(ids)) == n,
                "sample": False,
                "error": "",
            }
        )
    mine.send("stop")
    child.join(10)
    measured.sort(key=lambda r: r["seconds"])
    result = {
        **measured[len(measured) // 2],
        "spread": (measured[0]["seconds"], measured[-1]["seconds"]),
        "runs": len(measured),
    }
    floor = operating_floor(n, 2.0, 50, COST)
    every = ", ".join(f"{m['seconds']:,.1f}s" for m in measured)
    print(
        f"operating limit (480 s per method in 10 minutes): floor {floor:,.1f}s for {n:,} rows; ours "
        f"{result['seconds']:,.1f}s = {result['seconds'] / floor:.2f}x, "
        f"{result['r429']} OPERATION_TIME_LIMIT refusals (all runs: {every})"
    )
    return _report([result], n, 2.0, 50)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.export")
    parser.add_argument("--quick", action="store_true", help="10,000 deals")
    parser.add_argument("--deals", type=int)
    parser.add_argument("--sample", type=int, default=2000, help="deals for page-by-page clients")
    parser.add_argument(
        "--budget", type=float, default=180.0, help="seconds each client gets before it is stopped"
    )
    parser.add_argument(
        "--runs", type=int, default=3, help="runs of our export (median and spread are printed)"
    )
    parser.add_argument("--ours-only", action="store_true", help="skip the peers (large sizes)")
    parser.add_argument("--parallel", type=int, default=None, help="ours: requests in flight (default: auto)")
    parser.add_argument("--sync", action="store_true", help="ours: the synchronous client (with --apart)")
    parser.add_argument(
        "--profile",
        choices=("default", "docs"),
        default="default",
        help="the sandbox's cost model: ours, or the docs' measured example (huge-data.md)",
    )
    parser.add_argument(
        "--apart",
        action="store_true",
        help="ours only, with the sandbox in a process of its own (no shared interpreter)",
    )
    args = parser.parse_args(argv)
    global PARALLEL, SYNC, COST
    PARALLEL, SYNC = args.parallel, args.sync
    if args.profile == "docs":
        COST = CostModel.docs_example()
    n = args.deals or (10_000 if args.quick else 100_000)
    if args.apart:
        return apart(n, max(1, args.runs))
    portal = _portal(n)
    rate, burst = portal.rate or (2.0, 50)
    print(
        f"sandbox: {n:,} deals, standard plan (drain {rate}/s, burst {burst}), operating limit 480 s/10 min"
    )
    print(
        f"cost model: round trip {COST.round_trip * 1000:.0f} ms, {COST.per_item * 1000:.1f} ms per returned "
        "row, "
        f"COUNT {COST.count_cost * 1000:.0f} ms per 1,000 rows, deep paging {COST.per_offset * 1000:.0f} ms "
        "per 1,000 offset"
    )
    everything = set(range(1, n + 1))
    sample = set(range(1, min(args.sample, n) + 1))
    results = []
    with portal.serve(https=True) as server:
        os.environ["REQUESTS_CA_BUNDLE"] = str(server.cert_path)
        host = server.url.split("://")[1]

        def ours_export() -> list[Any]:
            async def go() -> list[Any]:
                # A bucket of its own per run, as the portal's is emptied between runs: the default one is
                # shared by every client of the process, so a second run would start where the first left the
                # bucket.
                limiter = LeakyBucketLimiter.for_plan(RatePlan.standard())
                async with AsyncBitrix24(
                    server.webhook_url, verify=str(server.cert_path), limiter=limiter
                ) as client:
                    return await client.export(
                        "crm.deal.list", {"select": ["ID", "TITLE"]}, parallel=PARALLEL
                    )

            return asyncio.run(go())

        def ours_iterate() -> list[Any]:
            with Bitrix24(server.webhook_url, verify=str(server.cert_path)) as client:
                return list(
                    client.iterate(
                        "crm.deal.list", {"select": ["ID", "TITLE"], "filter": {"<=ID": len(sample)}}
                    )
                )

        def fast_get_all() -> list[Any]:
            import fast_bitrix24

            fb = fast_bitrix24.Bitrix(server.webhook_url, verbose=False, ssl=False)
            return list(fb.get_all("crm.deal.list", {"select": ["ID", "TITLE"]}))

        def sdk(fast: bool) -> Callable[[], list[Any]]:
            def run() -> list[Any]:
                from b24pysdk import BitrixWebhook, Client

                client = Client(BitrixWebhook(domain=host, webhook_token=f"1/{portal.webhook_code}"))
                request = client.crm.deal.list(
                    select=["ID", "TITLE"], filter=None if fast else {"<=ID": len(sample)}
                )
                return list((request.as_list_fast() if fast else request.as_list()).result)

            return run

        runs = []
        for _ in range(max(1, args.runs)):
            # each run and client starts with an empty bucket and a fresh operating budget
            portal._bucket.clear()
            portal.reset_operating()
            runs.append(measure("ours export()", portal, ours_export, everything, budget=args.budget))
        runs.sort(key=lambda r: r["seconds"])
        results.append(
            {**runs[len(runs) // 2], "spread": (runs[0]["seconds"], runs[-1]["seconds"]), "runs": len(runs)}
        )
        portal._bucket.clear()
        portal.reset_operating()
        if args.ours_only:
            return _report(results, n, rate, burst)
        results.append(measure("fast_bitrix24 get_all", portal, fast_get_all, everything, budget=args.budget))
        portal._bucket.clear()
        portal.reset_operating()
        results.append(measure("b24pysdk as_list_fast()", portal, sdk(True), everything, budget=args.budget))
        portal._bucket.clear()
        portal.reset_operating()
        results.append(
            measure("ours iterate()", portal, ours_iterate, sample, sample=True, budget=args.budget)
        )
        portal._bucket.clear()
        portal.reset_operating()
        results.append(
            measure("b24pysdk as_list()", portal, sdk(False), sample, sample=True, budget=args.budget)
        )
    return _report(results, n, rate, burst)


def _report(results: list[dict[str, Any]], n: int, rate: float, burst: int) -> dict[str, float]:
    bound, bound4 = lower_bound(n, rate, burst, COST), lower_bound(n, rate, burst, COST, concurrency=4)
    plan = rate_bound(n, rate, burst, COST)
    print(
        f"\nlower bound for {n:,} rows under this model: {bound4:.2f}s with 4 requests in flight (ours), "
        f"{bound:.2f}s with every request at once; the plan alone: {plan:.2f}s "
        f"({math.ceil(n / 2500) + 1} requests at {rate}/s after a burst of {burst}, the last one processed)"
    )
    print(
        f"{'client':26} {'wall s':>9} {'requests':>9} {'503s':>5} {'rows/s':>9} {'exactly once':>13} "
        f"{'× bound@4':>10} {'× bound@∞':>10} {'× plan':>7}"
    )
    for r in results:
        full = r["seconds"]
        if r["sample"] and r["items"]:
            scale = n / r["items"]
            # Linear in work, but never faster than the plan lets that many requests through.
            full = max(r["seconds"] * scale, (r["requests"] * scale - burst) / rate)
        note = f" (first {r['items']:,}; full ≈ {full:,.0f}s)" if r["sample"] else ""
        if "spread" in r:
            note += f" (median of {r['runs']} runs, {r['spread'][0]:.2f}–{r['spread'][1]:.2f}s)"
        if r["error"] and not r["items"]:
            print(
                f"{r['client']:26} {r['seconds']:9.2f} {r['requests']:9d} {r['r503']:5d} {'-':>9} {'-':>13} "
                f"{'-':>10} {'-':>10} {'-':>7}  {r['error']}"
            )
            continue
        print(
            f"{r['client']:26} {r['seconds']:9.2f} {r['requests']:9d} {r['r503']:5d} {r['per_s']:9.0f} "
            f"{'yes' if r['exact'] else 'NO':>13} {full / bound4:10.2f} {full / bound:10.2f} "
            f"{full / plan:7.2f}{note}"
            f"{'  ' + r['error'] if r['error'] else ''}"
        )
    import os as _os
    import sys as _sys

    ours = results[0]
    _sys.stdout.flush()
    if any(r["error"].startswith("did not finish") for r in results):
        # A peer stuck in its own retry loop must not keep the benchmark alive.
        _os._exit(0) if __name__ == "__main__" else None
    return {
        "export_s": ours["seconds"],
        "export_rows_per_s": ours["per_s"],
        "export_vs_bound": ours["seconds"] / bound,
        "export_vs_bound_at_4": ours["seconds"] / bound4,
        "export_vs_plan": ours["seconds"] / plan,
        "export_exact": float(ours["exact"]),
    }


if __name__ == "__main__":
    main()
