"""How long the sandbox takes to build a big portal. `python -m benchmarks.sandbox_build`"""

from __future__ import annotations

import time

from bitrix24_agent_tools.sandbox import Portal


def main(argv: list[str] | None = None) -> dict[str, float]:
    start = time.perf_counter()
    Portal(seed=1, deals=100_000)
    seconds = time.perf_counter() - start
    print(f"Portal(deals=100_000) built in {seconds:.2f}s")
    return {"build_100k_s": seconds}


if __name__ == "__main__":
    main()
