"""`make bench`: run every benchmark (quick sizes) and print one summary table."""

from __future__ import annotations

import sys

from benchmarks import export, masking, mcp_tokens, overhead, sandbox_build, tokens, worker


def main() -> int:
    figures: dict[str, float] = {}
    for title, run in (
        ("tokens", lambda: tokens.main([])),
        ("MCP tools/list tokens", lambda: mcp_tokens.main([])),
        ("overhead", lambda: overhead.main([])),
        ("masking", lambda: masking.main(["--runs", "3"])),
        ("sandbox build", lambda: sandbox_build.main([])),
        ("offline worker", lambda: worker.main([])),
        ("export (--quick)", lambda: export.main(["--quick"] if "--full" not in sys.argv else [])),
    ):
        print(f"\n=== {title} ===")
        figures.update(run())
    print("\n=== summary ===")
    rows = [
        (
            "core pack schema tokens (o200k)",
            f"{figures['core_tokens']:.0f} ({figures['core_per_tool']:.0f}/tool; peers 101–760/tool)",
        ),
        ("all 12 packs schema tokens", f"{figures['all_tokens']:.0f} ({figures['all_per_tool']:.0f}/tool)"),
        (
            "MCP tools/list core / core+comms",
            f"{figures['mcp_core_tokens']:.0f} / {figures['mcp_core_comms_tokens']:.0f}",
        ),
        ("tool+guard overhead, read", f"{figures['read_overhead_us']:.0f} µs"),
        ("tool+guard overhead, confirmed write", f"{figures['write_overhead_us']:.0f} µs"),
        ("sandbox build, 100k deals", f"{figures['build_100k_s']:.2f} s"),
        ("offline worker throughput", f"{figures['worker_events_per_s']:.0f} events/s"),
        (
            "masking, 10,000 secrets",
            f"{figures['mask_us_10000']:.0f} µs per tool output, "
            f"{figures['add_secret_us_10000']:.1f} µs to add one",
        ),
        (
            "export rows/s (ours)",
            f"{figures['export_rows_per_s']:.0f} ({figures['export_vs_bound']:.1f}× the lower bound, "
            f"exactly once: {'yes' if figures['export_exact'] else 'NO'})",
        ),
    ]
    for name, value in rows:
        print(f"{name:40} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
