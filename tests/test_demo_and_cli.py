"""`make demo` and the CLI: the demo works offline end to end; the CLI refuses writes nobody confirmed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from bitrix24_agent_tools.cli import main
from bitrix24_agent_tools.demo import run_demo
from bitrix24_agent_tools.sandbox import Portal

ROOT = Path(__file__).resolve().parent.parent


def test_demo_routes_confirms_and_writes(capsys: Any) -> None:
    figures = run_demo(seed=7)
    assert figures["packs"] == ("core", "comms")
    assert figures["asked"] == 5 and figures["writes"] == 4  # the edited message is shown once more
    assert figures["deal"]["STAGE_ID"] == "WON"
    assert figures["routed_tokens"] < figures["all_tokens"]
    printed = capsys.readouterr().out
    assert "person asked [write]: Update deal #" in printed and "invalid arguments" in printed
    assert Portal(seed=7).webhook_code not in printed


def test_the_demo_command_exits_zero_offline() -> None:
    env = {
        **os.environ,
        "B24_WEBHOOK_URL": "",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    done = subprocess.run(
        [sys.executable, "-m", "bitrix24_agent_tools.cli", "demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "confirmed writes" in done.stdout


def test_cli_call_reads_and_refuses_unconfirmed_writes(capsys: Any, tmp_path: Any) -> None:
    portal = Portal(seed=1)
    with portal.serve() as server:
        common = ["--webhook", server.webhook_url, "--plans", str(tmp_path / "p.sqlite3")]
        assert main(["call", "crm.deal.get", "--params", '{"id": 2}', *common]) == 0
        assert '"ID":"2"' in capsys.readouterr().out
        assert (
            main(["call", "crm.deal.update", "--params", '{"id": 2, "fields": {"TITLE": "cli"}}', *common])
            == 1
        )
        assert "no person can confirm" in capsys.readouterr().err  # errors go to stderr
        assert (
            main(
                [
                    "call",
                    "crm.deal.update",
                    "--params",
                    '{"id": 2, "fields": {"TITLE": "cli"}}',
                    "--confirm-write",
                    *common,
                ]
            )
            == 0
        )
        assert portal.entity("deal", 2)["TITLE"] == "cli"
        assert main(["call", "crm.deal.delete", "--params", '{"id": 2}', "--confirm-write", *common]) == 1
        assert portal.entity("deal", 2) is not None
        assert (
            main(
                [
                    "call",
                    "im.message.add",
                    "--params",
                    '{"DIALOG_ID": "1", "MESSAGE": "x"}',
                    "--confirm-write",
                    *common,
                ]
            )
            == 0
        )
        assert main(["call", "crm.deal.get", "--params", "[1]", *common]) == 1
        out = capsys.readouterr()
        assert server.webhook_url not in out.out + out.err


def test_cli_executes_a_plan_only_with_confirm_write(capsys: Any, tmp_path: Any) -> None:
    from bitrix24_agent_tools.client import Bitrix24
    from bitrix24_agent_tools.confirmers import DeferredConfirmer
    from bitrix24_agent_tools.guard import Guard, Policy
    from bitrix24_agent_tools.stores import SqlitePlanStore
    from bitrix24_agent_tools.toolbox import Toolbox

    portal = Portal(seed=1)
    plans = str(tmp_path / "plans.sqlite3")
    with portal.serve() as server:
        box = Toolbox(
            Bitrix24(server.webhook_url),
            guard=Guard(Policy.writer(), DeferredConfirmer(), plans=SqlitePlanStore(plans)),
        )
        plan_id = box.run("b24_task_create", {"title": "from a plan"}).content.split("plan ")[1].split()[0]
        common = ["--webhook", server.webhook_url, "--plans", plans]
        capsys.readouterr()
        assert main(["call", "--show-plan", plan_id, *common]) == 0  # shown, not run, not used up
        shown = capsys.readouterr().out
        assert f"plan {plan_id}" in shown and "from a plan" in shown and "tasks.task.add" in shown
        assert not [t for t in portal.entities("task") if t["title"] == "from a plan"]
        assert main(["call", "--execute-plan", plan_id, *common]) == 2
        assert main(["call", "--execute-plan", plan_id, "--confirm-write", *common]) == 0
        assert main(["call", "--execute-plan", plan_id, "--confirm-write", *common]) == 1
    assert len([t for t in portal.entities("task") if t["title"] == "from a plan"]) == 1


def test_packs_and_route_commands(capsys: Any) -> None:
    assert main(["packs"]) == 0
    listing = capsys.readouterr().out
    assert listing.count("tokens") == 12
    assert main(["route", "открытые", "линии"]) == 0
    assert capsys.readouterr().out.startswith("core,comms")


def test_demo_against_a_portal_url_confirms_every_write(capsys: Any) -> None:
    portal = Portal(seed=7, deals=40)
    before = portal.entities("deal")
    with portal.serve() as server:
        figures = run_demo(
            portal_url=server.webhook_url, answer=lambda request: {"reject": "not on my portal"}
        )
    assert figures["asked"] == 4 and figures["writes"] == 0
    assert (
        portal.entities("deal") == before and portal.entities("task") and not portal.state["timeline_comment"]
    )
    assert not [r for r in portal.requests if r.method.endswith((".add", ".update"))]
    assert portal.webhook_code not in capsys.readouterr().out


def test_the_demo_prints_each_step_before_its_question_and_reports_what_happened() -> None:
    from bitrix24_agent_tools.demo import run_demo

    lines: list[str] = []

    def person(request: dict[str, Any]) -> Any:
        lines.append(f"ASKED {request['method']}")
        return (
            {"type": "reject", "message": "not now"}
            if request["method"] == "crm.timeline.comment.add"
            else True
        )

    figures = run_demo(answer=person, out=lines.append)
    move = next(i for i, line in enumerate(lines) if "agent → b24_deal_move" in line)
    assert lines.index("ASKED crm.deal.update") > move  # the agent's step is shown before the person is asked
    assert "model: scripted" in "\n".join(lines)
    assert "not done: commented on it" in figures["final"] and "moved the deal to WON" in figures["final"]
