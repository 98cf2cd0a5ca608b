"""Export at sizes no in-memory sandbox holds (1M rows), simulated through the cost model: our real export
flow and client, against a responder that makes each page's rows from the filter (contiguous IDs, nothing
stored), on a virtual clock. The client paces itself by the plan's leaky bucket, so the virtual time it spends
waiting is what a portal with that plan would make it wait; each request's service time (cost model) is
divided by the requests in flight (4), as they overlap. Printed with the plan's own bound: the fewest
requests, at the plan's rate.

    python -m benchmarks.export_sim [--rows 1000000]
"""

from __future__ import annotations

import argparse
import json
import math
from urllib.parse import parse_qs, urlsplit

import httpx

from benchmarks.export import COST, lower_bound
from bitrix24_agent_tools.client import Bitrix24

RATE, BURST, IN_FLIGHT = 2.0, 50, 4


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


def responder(n: int, clock: Clock, counter: list[int]) -> httpx.MockTransport:
    def page(query: dict[str, list[str]]) -> tuple[list[dict[str, str]], int]:
        gt = int(query.get("filter[>ID]", ["0"])[0])
        le = int(query.get("filter[<=ID]", [str(n)])[0])
        desc = query.get("order[ID]", ["ASC"])[0].upper() == "DESC"
        lo, hi = max(gt + 1, 1), min(le, n)
        ids = range(hi, max(lo, hi - 49) - 1, -1) if desc else range(lo, min(hi, lo + 49) + 1)
        return [{"ID": str(i), "TITLE": f"Deal {i}"} for i in ids], max(0, hi - lo + 1)

    def handle(request: httpx.Request) -> httpx.Response:
        counter[0] += 1
        body = json.loads(request.content or b"{}")
        results, totals, rows_out = {}, {}, 0
        for key, command in (body.get("cmd") or {}).items():
            query = parse_qs(urlsplit("x://y/" + command).query)
            rows, total = page(query)
            results[key] = rows
            rows_out += len(rows)
            if query.get("start", ["0"])[0] != "-1":
                totals[key] = total
        clock.sleep((COST.round_trip + rows_out * COST.per_item) / IN_FLIGHT)
        payload = {
            "result": {
                "result": results,
                "result_error": [],
                "result_total": totals or [],
                "result_next": [],
                "result_time": [],
            },
            "time": {
                "start": clock.now,
                "finish": clock.now,
                "duration": 0.0,
                "processing": 0.0,
                "operating": 0,
            },
        }
        return httpx.Response(200, json=payload)

    return httpx.MockTransport(handle)


def simulate(n: int) -> dict[str, float]:
    clock, counter = Clock(), [0]
    client = Bitrix24(
        "https://sim.bitrix24.test/rest/1/simulatedwebhookcode0001/",
        transport=responder(n, clock, counter),
        plan="standard",
        clock=clock,
        sleep=clock.sleep,
        seed=1,
    )
    count = sum(1 for _ in client.export_stream("crm.deal.list", {"select": ["ID", "TITLE"]}))
    fewest = math.ceil(n / 2500) + 1
    bound = lower_bound(n, RATE, BURST, COST, concurrency=IN_FLIGHT)
    return {"rows": count, "requests": counter[0], "seconds": clock.now, "fewest": fewest, "bound": bound}


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.export_sim")
    parser.add_argument("--rows", type=int, nargs="*", default=[300_000, 1_000_000])
    args = parser.parse_args(argv)
    print(
        f"simulated export (cost model; standard plan {RATE}/s, burst {BURST}; {IN_FLIGHT} requests in "
        "flight)"
    )
    print(
        f"{'rows':>10} {'requests':>9} {'fewest':>7} {'virtual s':>10} {'bound@4 s':>13} {'× bound':>8} "
        f"{'each once':>10}"
    )
    out: dict[str, float] = {}
    for n in args.rows:
        r = simulate(n)
        print(
            f"{n:10,} {r['requests']:9d} {r['fewest']:7d} {r['seconds']:10.1f} {r['bound']:13.1f} "
            f"{r['seconds'] / r['bound']:8.3f} {'yes' if r['rows'] == n else 'NO':>10}"
        )
        out[f"sim_{n}_vs_bound"] = r["seconds"] / r["bound"]
    return out


if __name__ == "__main__":
    main()
