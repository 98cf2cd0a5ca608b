"""Export side by side the way a peer would accept it: every client in a child process of its own, against a
fresh sandbox process of its own, rounds interleaved (the order rotates each round), min / median / max.

    python -m benchmarks.peers                          # 100,000 deals, 3 rounds, the default cost profile
    python -m benchmarks.peers --profile docs           # the docs' measured costs (huge-data.md)
    python -m benchmarks.peers --deals 300000 --clients ours,fast-recipe,ideal

Clients (each at its best documented path unless named for equal concurrency):
  ours          AsyncBitrix24.export() at its default (in flight from the plan's burst)
  ours-sync     Bitrix24.export() at its default (threads)
  ours@4        AsyncBitrix24.export(parallel=4): equal concurrency with the peers' defaults
  ours-iterate  Bitrix24.iterate(): every row handed over in ID order (ID ranges, 8 requests in flight)
  fast-recipe   fast_bitrix24 call() list mode with the docs' recipe: start=-1, ID ranges (huge-data.md)
  b24pysdk      b24pysdk's fastest helper, as_list_fast()
  ideal         a reference: prebuilt batches of 50 ID-range pages (contiguous IDs), 40 in flight, httpx,
                replies decoded by orjson (as ours are)
Each client run has a time budget; a client that does not finish is reported, not waited for.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

CLIENTS = ("ours", "ours-sync", "ours@4", "ours-iterate", "fast-recipe", "b24pysdk", "ideal")


# --- the sandbox process ------------------------------------------------------------------------------------
def serve(n: int, profile: str) -> None:
    """Serve a seeded sandbox on loopback HTTPS; print its webhook and certificate; stop when stdin closes."""
    from benchmarks import export
    from bitrix24_agent_tools.sandbox import CostModel

    if profile == "docs":
        export.COST = CostModel.docs_example()
    portal = export._portal(n)
    with portal.serve(https=True) as server:
        print(json.dumps({"url": server.webhook_url, "cert": str(server.cert_path)}), flush=True)
        sys.stdin.read()
        print(json.dumps({"requests": len(portal.requests), "r503": portal.rejected["QUERY_LIMIT_EXCEEDED"]}))


# --- the client processes -----------------------------------------------------------------------------------
def _ids(rows: list[Any]) -> list[int]:
    return [int(r.get("ID", r.get("id"))) for r in rows if isinstance(r, dict)]


def run_client(name: str, url: str, cert: str, n: int) -> dict[str, Any]:
    import asyncio

    os.environ["REQUESTS_CA_BUNDLE"] = cert
    os.environ["SSL_CERT_FILE"] = cert
    select = ["ID", "TITLE"]
    started, cpu = time.perf_counter(), time.process_time()
    if name in ("ours", "ours@4"):
        from bitrix24_agent_tools.client import AsyncBitrix24

        async def go() -> list[Any]:
            async with AsyncBitrix24(url, verify=cert) as client:
                return await client.export(
                    "crm.deal.list", {"select": select}, parallel=4 if name == "ours@4" else None
                )

        rows = asyncio.run(go())
    elif name == "ours-sync":
        from bitrix24_agent_tools.client import Bitrix24

        with Bitrix24(url, verify=cert) as client:
            rows = client.export("crm.deal.list", {"select": select})
    elif name == "ours-iterate":
        from bitrix24_agent_tools.client import Bitrix24

        with Bitrix24(url, verify=cert) as client:
            rows = list(client.iterate("crm.deal.list", {"select": select}))
            ordered = [int(r["ID"]) for r in rows] == list(range(1, n + 1))
            if not ordered:
                raise SystemExit("iterate() handed rows over out of order")
    elif name == "fast-recipe":
        import fast_bitrix24

        fb = fast_bitrix24.Bitrix(url, verbose=False, ssl=False)
        top = fb.call("crm.deal.list", {"order": {"ID": "DESC"}, "select": ["ID"], "start": -1})
        first = top[0] if isinstance(top, list) else top  # one row comes back as the row itself
        last = int(first["ID"]) if isinstance(first, dict) and first.get("ID") else 0
        ranges = [
            {"order": {"ID": "ASC"}, "select": select, "start": -1, "filter": {">=ID": a, "<ID": a + 50}}
            for a in range(1, last + 1, 50)
        ]
        pages = fb.call("crm.deal.list", ranges)  # list mode: batched 50 a request, its own concurrency
        rows = [r for page in pages for r in (page if isinstance(page, list) else [page])]
    elif name == "b24pysdk":
        from b24pysdk import BitrixWebhook, Client

        host = url.split("://")[1].split("/")[0]
        code = "/".join(url.rstrip("/").split("/")[-2:])
        client = Client(BitrixWebhook(domain=host, webhook_token=code))
        rows = list(client.crm.deal.list(select=select).as_list_fast().result)
    elif name == "ideal":
        rows = asyncio.run(_ideal(url, cert, n, select))
    else:
        raise SystemExit(f"unknown client {name}")
    ids = _ids(rows)
    return {
        "seconds": time.perf_counter() - started,
        "cpu": time.process_time() - cpu,
        "rows": len(ids),
        "exact": len(ids) == len(set(ids)) == n and min(ids) == 1 and max(ids) == n,
    }


async def _ideal(url: str, cert: str, n: int, select: list[str]) -> list[Any]:
    """Batches of 50 ID-range pages built up front, 40 requests in flight, paced to the standard plan's bucket
    with the client's own limiter (no 503s): what any client could do knowing the IDs are contiguous."""
    import asyncio
    from urllib.parse import urlencode

    import httpx
    import orjson

    from bitrix24_agent_tools.client import LeakyBucketLimiter, RatePlan

    limiter = LeakyBucketLimiter.for_plan(RatePlan.standard())
    starts = list(range(1, n + 1, 50))
    batches = [starts[i : i + 50] for i in range(0, len(starts), 50)]
    rows: list[Any] = []
    gate = asyncio.Semaphore(40)

    async def one(http: httpx.AsyncClient, group: list[int]) -> None:
        cmd = {
            f"p{a}": "crm.deal.list?"
            + urlencode(
                {
                    "order[ID]": "ASC",
                    "start": -1,
                    "filter[>=ID]": a,
                    "filter[<ID]": a + 50,
                    **{f"select[{i}]": s for i, s in enumerate(select)},
                }
            )
            for a in group
        }
        async with gate:
            await asyncio.sleep(limiter.acquire("p"))
            answer = orjson.loads((await http.post(url + "batch", json={"halt": 0, "cmd": cmd})).content)
        for page in answer["result"]["result"].values():
            rows.extend(page)

    async with httpx.AsyncClient(verify=cert, timeout=60) as http:
        await asyncio.gather(*(one(http, group) for group in batches))
    return rows


# --- the conductor ------------------------------------------------------------------------------------------
def round_of(name: str, n: int, profile: str, budget: float) -> dict[str, Any]:
    sandbox = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.peers", "--serve", str(n), "--profile", profile],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert sandbox.stdout is not None and sandbox.stdin is not None
        where = json.loads(sandbox.stdout.readline())
        try:
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.peers",
                    "--client",
                    name,
                    "--url",
                    where["url"],
                    "--cert",
                    where["cert"],
                    "--n",
                    str(n),
                ],
                capture_output=True,
                text=True,
                timeout=budget,
            )
            result = (
                json.loads(done.stdout.strip().splitlines()[-1])
                if done.returncode == 0
                else {"error": done.stderr.strip().splitlines()[-1][:80] if done.stderr.strip() else "failed"}
            )
        except subprocess.TimeoutExpired:
            result = {"error": f"did not finish within {budget:.0f}s"}
        sandbox.stdin.close()
        counts = json.loads(sandbox.stdout.readline() or "{}")
        return {**result, **counts}
    finally:
        sandbox.kill()
        sandbox.wait(10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", choices=("default", "docs"), default="default")
    parser.add_argument("--clients", default=",".join(CLIENTS))
    parser.add_argument("--budget", type=float, default=180.0, help="seconds a client run may take")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--cert", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.profile)
        return 0
    if args.client:
        print(json.dumps(run_client(args.client, args.url, args.cert, args.n)))
        return 0
    clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    results: dict[str, list[dict[str, Any]]] = {c: [] for c in clients}
    for r in range(args.rounds):
        order = clients[r % len(clients) :] + clients[: r % len(clients)]  # interleaved, rotating
        for name in order:
            results[name].append(round_of(name, args.deals, args.profile, args.budget))
            print(f"round {r + 1}: {name}: {results[name][-1]}", file=sys.stderr, flush=True)
    print(
        f"\n{args.deals:,} deals, profile {args.profile}, {args.rounds} interleaved rounds, each client and "
        "each sandbox in a process of its own (standard plan 2/s, burst 50)"
    )
    head = f"{'client':<14} {'wall s: median (min–max)':>28} {'client CPU s':>13} {'requests':>9} {'503s':>5}"
    print(head + "  exact")
    for name, runs in results.items():
        good = [x for x in runs if "seconds" in x]
        if not good:
            print(f"{name:<14} {'failed: ' + str(runs[0].get('error'))[:60]:>28}")
            continue
        walls = sorted(x["seconds"] for x in good)
        cpus = [x["cpu"] for x in good]
        exact = all(x["exact"] for x in good)
        print(
            f"{name:<14} {statistics.median(walls):>10.2f} ({walls[0]:.2f}–{walls[-1]:.2f})"
            f"{statistics.median(cpus):>16.2f} {good[0].get('requests', 0):>9} {good[0].get('r503', 0):>5}"
            f"  {'yes' if exact else 'NO'}"
            + (f"  ({len(runs) - len(good)} failed)" if len(good) < len(runs) else "")
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
