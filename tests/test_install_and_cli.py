"""The CLI works on any install: --version, a missing extra named with its pip line, no state in the
working dir."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

from bitrix24_agent_tools.cli import main
from bitrix24_agent_tools.sandbox import Portal


def test_version(capsys: Any) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.startswith("b24-agent-tools ")


def test_a_missing_extra_leaves_the_cli_working_and_names_the_install_line(
    monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.delitem(sys.modules, "bitrix24_agent_tools.integrations.mcp", raising=False)
    monkeypatch.setitem(sys.modules, "mcp", None)  # as on an install without the [mcp] extra
    assert main(["route", "move", "the", "deal"]) == 0  # other commands still work
    assert main(["mcp", "--sandbox"]) == 2
    assert "pip install 'bitrix24-agent-tools[mcp]'" in capsys.readouterr().err


def test_a_read_from_a_read_only_directory_leaves_no_state_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    portal = Portal(seed=1)
    with portal.serve() as server:
        workdir = tmp_path / "ro"
        workdir.mkdir()
        os.chmod(workdir, 0o555)
        monkeypatch.chdir(workdir)
        try:
            code = main(["call", "crm.deal.get", "--params", '{"id": 1}', "--webhook", server.webhook_url])
        finally:
            os.chmod(workdir, 0o755)
    assert code == 0 and list(workdir.iterdir()) == []


def test_faces_take_a_client_the_way_each_framework_expects(client: Any, portal: Portal) -> None:
    from bitrix24_agent_tools.confirmers import AutoConfirmer
    from bitrix24_agent_tools.integrations.langchain import Bitrix24Toolkit
    from bitrix24_agent_tools.integrations.llama_index import Bitrix24ToolSpec

    toolkit = Bitrix24Toolkit(client=client, packs=("core",), confirm=AutoConfirmer())
    assert any(t.name == "b24_crm_list" for t in toolkit.get_tools())
    spec = Bitrix24ToolSpec(client, packs=("core",))
    assert any(t.metadata.name == "b24_crm_get" for t in spec.to_tool_list())


def test_an_error_text_is_masked_before_it_is_cut() -> None:
    from bitrix24_agent_tools.client import error_from
    from bitrix24_agent_tools.masking import register_secret

    token = "livetoken" + "7" * 23
    register_secret(token)
    err = error_from("ERROR_CORE", "x" * 150 + token + "y" * 50)
    assert "7777" not in err.short() and "***" in err.short()


def test_the_environment_configures_every_face_the_same_way(
    portal: Portal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """design.md Configuration: B24_METHOD_ALLOWLIST, B24_REQUIRE_PLAN, B24_AUDIT_FILE, B24_RATE_LIMITER_*
    are read."""
    from bitrix24_agent_tools.confirmers import AutoConfirmer
    from bitrix24_agent_tools.integrations.langchain import Bitrix24Toolkit
    from bitrix24_agent_tools.settings import Settings
    from bitrix24_agent_tools.stores import SqliteAuditStore

    monkeypatch.setenv("B24_WEBHOOK_URL", portal.webhook_url)
    monkeypatch.setenv("B24_METHOD_ALLOWLIST", "crm.deal.*, tasks.task.list")
    monkeypatch.setenv("B24_AUDIT_FILE", str(tmp_path / "audit.sqlite3"))
    monkeypatch.setenv("B24_RATE_LIMITER_RATE", "3")
    monkeypatch.setenv("B24_RATE_LIMITER_BURST", "7")
    settings = Settings.from_env()
    assert settings.client_options()["plan"].burst == 7
    guard = settings.guard(AutoConfirmer())
    assert guard.policy.only == ("crm.deal.*", "tasks.task.list") and isinstance(
        guard.audit, SqliteAuditStore
    )
    from bitrix24_agent_tools.client import Bitrix24
    from bitrix24_agent_tools.toolbox import Toolbox

    box = Toolbox(Bitrix24(portal.webhook_url, transport=portal.transport()), packs=("core",), guard=guard)
    assert not box.run("b24_core_call", {"method": "crm.deal.get", "params": {"id": 1}}).is_error
    refused = box.run("b24_core_call", {"method": "crm.lead.get", "params": {"id": 1}})
    assert refused.is_error and "not allowed" in refused.content
    monkeypatch.setenv("B24_REQUIRE_PLAN", "1")
    planned = Settings.from_env().guard(AutoConfirmer())
    box = Toolbox(Bitrix24(portal.webhook_url, transport=portal.transport()), packs=("core",), guard=planned)
    out = box.run(
        "b24_core_call", {"method": "crm.deal.update", "params": {"id": 1, "fields": {"TITLE": "x"}}}
    )
    assert "stored as plan" in out.content and portal.entity("deal", 1)["TITLE"] != "x"
    assert Bitrix24Toolkit.from_env().toolbox.guard.policy.only == ("crm.deal.*", "tasks.task.list")
    from bitrix24_agent_tools.client import AsyncBitrix24

    for client in (Bitrix24.from_env(), AsyncBitrix24.from_env()):  # the clients read the same settings
        assert (client.plan.rate, client.plan.burst) == (3.0, 7)


def test_a_bad_number_in_the_environment_names_its_variable() -> None:
    import pytest as _pytest

    from bitrix24_agent_tools.client import ConfigError
    from bitrix24_agent_tools.settings import Settings

    with _pytest.raises(ConfigError, match="B24_RATE_LIMITER_RATE='abc'"):
        Settings.from_env({"B24_RATE_LIMITER_RATE": "abc"})


def test_settings_are_one_validated_object_whose_errors_name_the_variable() -> None:
    """pydantic-settings reads B24_*: lists are comma-separated, booleans read as people write them, and a
    value that does not parse is refused with the variable's name and what it holds."""
    import pytest as _pytest

    from bitrix24_agent_tools.client.errors import ConfigError
    from bitrix24_agent_tools.settings import Settings

    settings = Settings.from_env(
        {
            "B24_PACKS": "core, comms",
            "B24_REQUIRE_PLAN": "yes",
            "B24_APPROVERS": "5,7",
            "B24_APPROVAL_TTL": "60",
        }
    )
    assert settings.packs == ("core", "comms") and settings.require_plan and settings.approvers == ("5", "7")
    assert settings.approval_ttl == 60.0 and Settings.from_env({}).packs == ("core",)
    with _pytest.raises(ConfigError, match="B24_APPROVAL_TTL='soon'"):
        Settings.from_env({"B24_APPROVAL_TTL": "soon"})
    with _pytest.raises(ConfigError, match="B24_RATE_LIMITER_BURST='many'"):
        Settings.from_env({"B24_RATE_LIMITER_BURST": "many"})
    with _pytest.raises(ConfigError, match="B24_REQUIRE_PLAN='perhaps'"):
        Settings.from_env({"B24_REQUIRE_PLAN": "perhaps"})
