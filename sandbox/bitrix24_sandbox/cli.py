"""`bitrix24-sandbox` / `python -m bitrix24_sandbox` (and the toolkit's `b24-agent-tools sandbox`): serve a
seeded portal on loopback."""

from __future__ import annotations

import argparse
import time
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("sandbox", help="serve a sandbox portal on loopback")
    add_arguments(parser)
    parser.set_defaults(func=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--https", action="store_true", help="serve HTTPS with a generated self-signed certificate"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--deals", type=int, default=30)
    parser.add_argument("--rate-limit", choices=["standard", "enterprise"], default=None)
    parser.add_argument("--persist", help="keep the portal's state in this file between runs")
    parser.add_argument(
        "--for-seconds", type=float, default=0.0, help="stop after this long (0: until Ctrl-C)"
    )


def main(argv: list[str] | None = None) -> int:
    """The ``bitrix24-sandbox`` command."""
    parser = argparse.ArgumentParser(
        prog="bitrix24-sandbox", description="serve a sandbox Bitrix24 portal on loopback"
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    from bitrix24_sandbox import Portal

    portal = Portal(seed=args.seed, deals=args.deals, rate_limit=args.rate_limit, persist=args.persist)
    with portal.serve(port=args.port, https=args.https) as server:
        print(f"sandbox portal: {server.url}\nwebhook: {server.webhook_url}", flush=True)
        if server.cert_path:
            print(f"certificate: {server.cert_path}", flush=True)
        try:
            deadline = time.monotonic() + args.for_seconds if args.for_seconds else None
            while deadline is None or time.monotonic() < deadline:
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
        finally:
            if args.persist:
                portal.save()
    return 0
