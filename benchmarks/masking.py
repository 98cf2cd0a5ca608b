"""Masking cost as the number of registered secrets grows: per tool output and per added secret.
`python -m benchmarks.masking [--runs N]` — median and range over several runs."""

from __future__ import annotations

import json
import secrets
import statistics
import sys
import time

from bitrix24_agent_tools import masking


def _output(secret: str | None) -> str:
    rows = [
        {
            "ID": str(i),
            "TITLE": f"Deal {i} for Northwind Foods",
            "STAGE_ID": "C1:NEW",
            "OPPORTUNITY": "1200.00",
            "COMMENTS": "call back on Monday" + (f" token {secret}" if secret and i == 7 else ""),
        }
        for i in range(12)
    ]
    return json.dumps({"items": rows, "count": 12})


def _time(text: str, repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        masking.mask_text(text)
    return (time.perf_counter() - start) / repeat * 1e6


def main(argv: list[str] | None = None) -> dict[str, float]:
    argv = list(sys.argv[1:] if argv is None else argv)
    runs = int(argv[argv.index("--runs") + 1]) if "--runs" in argv else 5
    figures: dict[str, float] = {}
    registered = 0
    for target in (10, 1000, 10000):
        while registered < target:
            masking.register_secret(secrets.token_hex(16))
            registered += 1
        known = secrets.token_hex(16)
        masking.register_secret(known)
        clean, dirty = _output(None), _output(known)
        assert known not in masking.mask_text(dirty)
        check = [_time(clean, 300) for _ in range(runs)]
        hit = [_time(dirty, 300) for _ in range(runs)]
        adds = []
        for _ in range(runs):
            fresh = [secrets.token_hex(16) for _ in range(50)]
            start = time.perf_counter()
            for value in fresh:
                masking.register_secret(value)
            adds.append((time.perf_counter() - start) / len(fresh) * 1e6)
        registered += 50 * runs + 1
        print(
            f"{target:>6} secrets: mask a {len(clean)}-char tool output {statistics.median(check):6.1f} µs "
            f"({min(check):.1f}–{max(check):.1f}); with a secret in it {statistics.median(hit):6.1f} µs "
            f"({min(hit):.1f}–{max(hit):.1f}); add a secret {statistics.median(adds):5.1f} µs "
            f"({min(adds):.1f}–{max(adds):.1f}); {runs} runs"
        )
        figures[f"mask_us_{target}"] = statistics.median(hit)
        figures[f"add_secret_us_{target}"] = statistics.median(adds)
    return figures


if __name__ == "__main__":
    main()
