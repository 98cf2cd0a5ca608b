"""`b24-agent-tools worker` and `b24-agent-tools dlq list|replay|purge`."""

from __future__ import annotations

import argparse
import importlib
import json
from typing import Any


def _load(spec: str) -> Any:
    module, _, name = spec.partition(":")
    if not module or not name:
        raise ValueError("--handler must look like package.module:function")
    return getattr(importlib.import_module(module), name)


def register(subparsers: Any) -> None:
    worker = subparsers.add_parser("worker", help="run the offline-queue worker")
    worker.add_argument("--handler", required=True, help="module:function called for each event")
    worker.add_argument(
        "--state",
        default=".b24-worker.sqlite3",
        help="durable worker state: a sqlite file, or postgresql://… shared by workers on many machines",
    )
    worker.add_argument(
        "--worker-id", help="stable name of this worker (default: host name); distinct per worker"
    )
    worker.add_argument("--budget", type=int, default=5, help="failures before an event is dead-lettered")
    worker.add_argument(
        "--recover-after",
        type=float,
        default=900.0,
        help="seconds before reservations nobody holds are adopted (0 to adopt at once)",
    )
    worker.add_argument(
        "--adopt",
        metavar="PROCESS_ID",
        help="handle the rows a lost worker reserved under this id, then exit",
    )
    worker.add_argument("--once", action="store_true", help="drain the queue, then exit")
    worker.add_argument("--idle", type=float, default=5.0, help="seconds to wait when the queue is empty")
    worker.set_defaults(func=_worker)
    dlq = subparsers.add_parser("dlq", help="inspect, replay or purge dead-lettered events")
    dlq.add_argument("action", choices=["list", "replay", "purge"])
    dlq.add_argument(
        "--state", default=".b24-worker.sqlite3", help="the worker's state (sqlite file or postgresql://…)"
    )
    dlq.add_argument("--handler", help="module:function (for replay)")
    dlq.add_argument("--row-id", help="purge only this dead letter")
    dlq.set_defaults(func=_dlq)
    status = subparsers.add_parser(
        "worker-status",
        help="is the worker's state reachable: its reservations and dead letters (exit 1 if not)",
    )
    status.add_argument(
        "--state", default=".b24-worker.sqlite3", help="the worker's state (sqlite file or postgresql://…)"
    )
    status.set_defaults(func=_status)


def _status(args: argparse.Namespace) -> int:
    """A supervisor's probe: exit 0 with the state's reservations and dead letters, or exit 1 saying why
    the state cannot be reached (the worker itself waits such a failure out)."""
    from bitrix24_agent_tools.events.offline import WorkerState, open_state
    from bitrix24_agent_tools.masking import mask_text

    try:
        state = open_state(args.state, scope="|", owner="status", lease=None)
        report: dict[str, Any] = {"ok": True}
        if isinstance(state, WorkerState):  # a PostgreSQL state is scoped per portal: reachable is the news
            report.update(reservations=len(state.open_processes()), dead_letters=len(state.dead_letters()))
    except Exception as exc:
        print(json.dumps({"ok": False, "error": mask_text(f"{type(exc).__name__}: {exc}")[:300]}))
        return 1
    print(json.dumps(report))
    return 0


def _worker(args: argparse.Namespace) -> int:
    from bitrix24_agent_tools.client import Bitrix24
    from bitrix24_agent_tools.events.offline import OfflineWorker

    worker = OfflineWorker(
        Bitrix24.from_env(),
        _load(args.handler),
        args.state,
        budget=args.budget,
        worker_id=args.worker_id,
        recover_after=args.recover_after,
    )
    if args.adopt:
        print(json.dumps(worker.adopt(args.adopt).__dict__))
        return 0
    if args.once:
        while True:
            stats = worker.run_once()
            print(json.dumps(stats.__dict__))
            if stats.fetched == 0:
                return 0
    worker.run_forever(idle=args.idle)
    return 0


def _dlq(args: argparse.Namespace) -> int:
    from bitrix24_agent_tools.client import Bitrix24
    from bitrix24_agent_tools.events.offline import OfflineWorker, WorkerState

    if str(args.state).startswith(("postgresql://", "postgres://")):
        state = OfflineWorker(
            Bitrix24.from_env(), print, args.state
        ).state  # rows are scoped by portal and app
    else:
        state = WorkerState(args.state)
    if args.action == "list":
        for item in state.dead_letters():
            print(json.dumps(item, ensure_ascii=False))
        return 0
    if args.action == "purge":
        print(f"purged {state.purge(args.row_id)}")
        return 0
    if not args.handler:
        print("replay needs --handler module:function")
        return 2
    worker = OfflineWorker(Bitrix24.from_env(), _load(args.handler), args.state)
    print(f"replayed {worker.replay()}")
    return 0
