"""Build the wheel and try it the way a pip user would: installed alone in a fresh virtualenv per extra, with
a smoke test of that face and of the CLI in each. Run by `make test` (the Makefile's wheel-check target,
before pytest). Virtualenvs are kept in build/wheel-venvs and reused while the extra's requirements are
unchanged; the wheel itself is reinstalled every run.

    python tools/wheel_check.py [--only bare,mcp]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENVS = ROOT / "build" / "wheel-venvs"
# The sandbox portal is a distribution of its own (sandbox/): "sandbox-alone" installs only its wheel (no
# toolkit); "bare" only the toolkit's; every other variant both, as the README's `[<face>,sandbox]` does.
EXTRAS = {
    "sandbox-alone": None,
    "bare": "",
    "sandbox": "sandbox",
    "langchain": "langchain,sandbox",
    "langgraph": "langgraph,sandbox",
    "llamaindex": "llamaindex,sandbox",
    "mcp": "mcp,sandbox",
    "openai-agents": "openai-agents,sandbox",
    "pydantic-ai": "pydantic-ai,sandbox",
    "notebook": "notebook,langchain,llamaindex,sandbox",  # the notebooks use the faces they show
}
# The examples each kind of user runs, from the wheel alone (outside the clone).
EXAMPLES = {
    "sandbox": ["quickstart.py", "packs_tour.py", "offline_worker.py", "online_handler.py"],
    "langchain": ["langchain_agent.py"],
    "llamaindex": ["llama_index_agent.py"],
    "openai-agents": ["openai_agents_approval.py"],
    "pydantic-ai": ["pydantic_ai_approval.py"],
    "notebook": ["export_progress.py"],
}
# What runs the notebooks (a user's Jupyter), beside the wheel: not what is being tried.
RUNNERS = {"notebook": ["nbclient", "ipykernel"]}

SMOKE = {
    "sandbox-alone": r"""
import importlib.util, ssl, subprocess, sys
import httpx
import bitrix24_sandbox
from bitrix24_sandbox import Portal
assert importlib.util.find_spec("bitrix24_agent_tools") is None  # installed alone
portal = Portal(seed=1)
with httpx.Client(transport=portal.transport()) as client:
    assert client.post(portal.webhook_url + "crm.deal.list", json={}).json()["total"] == 30
with portal.serve(https=True) as server:
    tls = ssl.create_default_context(cafile=str(server.cert_path))
    with httpx.Client(verify=tls) as client:
        reply = client.post(server.webhook_url + "user.current.json").json()
assert reply["result"]["ID"] == "1", reply
done = subprocess.run([sys.executable, "-m", "bitrix24_sandbox", "--for-seconds", "0.3"], capture_output=True,
                      text=True, timeout=60)
assert done.returncode == 0 and "webhook: http://127.0.0.1:" in done.stdout, done.stdout + done.stderr
print("sandbox alone ok", bitrix24_sandbox.__version__)
""",
    "bare": r"""
import bitrix24_agent_tools as b
from bitrix24_agent_tools import Bitrix24, Guard, Policy, Toolbox
box = Toolbox(Bitrix24("https://example.bitrix24.com/rest/1/abcdef123456/"))
assert box.for_request("tell Boris in chat", budget=400).specs[-1].name == "b24_load_pack"
try:
    from bitrix24_agent_tools.sandbox import Portal
except ModuleNotFoundError as exc:  # the sandbox is the [sandbox] extra, and says so
    assert "bitrix24-agent-tools[sandbox]" in str(exc), exc
else:
    raise AssertionError("the sandbox came without its extra")
print("bare ok", b.__version__)
""",
    "sandbox": r"""
import bitrix24_agent_tools as b
from bitrix24_agent_tools import Bitrix24, Guard, Policy, Toolbox
from bitrix24_agent_tools.confirmers import AutoConfirmer
from bitrix24_agent_tools.sandbox import Portal
portal = Portal(seed=1)
client = Bitrix24(portal.webhook_url, transport=portal.transport())
box = Toolbox(client, guard=Guard(Policy.writer(), AutoConfirmer()))
assert '"rows"' in box.run("b24_crm_list", {"entity": "deal", "limit": 2}).content
assert box.run("b24_deal_move", {"id": 2, "stage_id": "WON"}).content.startswith("deal #2 moved")
assert box.for_request("tell Boris in chat", budget=400).specs[-1].name == "b24_load_pack"
try:
    from bitrix24_agent_tools.tokens import count_tokens
    count_tokens("x")
except Exception as exc:
    assert "tokens" in str(exc) or "TIKTOKEN" in str(exc), exc  # a clear word, never a download
print("toolkit with its sandbox ok", b.__version__)
""",
    "langchain": r"""
from bitrix24_agent_tools import Bitrix24
from bitrix24_agent_tools.confirmers import AutoConfirmer
from bitrix24_agent_tools.integrations.langchain import (
    Bitrix24Toolkit, InterruptConfirmer, pack_routing_middleware,
)
from bitrix24_agent_tools.sandbox import Portal
from langchain.agents import create_agent
from langgraph.checkpoint.sqlite import SqliteSaver
portal = Portal(seed=1)
client = Bitrix24(portal.webhook_url, transport=portal.transport())
toolkit = Bitrix24Toolkit(client=client, confirm=AutoConfirmer())
tool = {t.name: t for t in toolkit.get_tools()}["b24_crm_get"]
assert '"ID":"2"' in tool.invoke({"entity": "deal", "id": 2})
pack_routing_middleware(toolkit)
with SqliteSaver.from_conn_string(":memory:") as saver:
    assert saver is not None
print("langchain ok")
""",
    "llamaindex": r"""
from bitrix24_agent_tools import Bitrix24
from bitrix24_agent_tools.integrations.llama_index import Bitrix24ToolSpec
from bitrix24_agent_tools.sandbox import Portal
portal = Portal(seed=1)
spec = Bitrix24ToolSpec.create(Bitrix24(portal.webhook_url, transport=portal.transport()))
tools = {t.metadata.name: t for t in spec.to_tool_list()}
assert '"ID":"2"' in str(tools["b24_crm_get"](entity="deal", id=2))
print("llamaindex ok")
""",
    "mcp": r"""
from bitrix24_agent_tools.client import AsyncBitrix24
from bitrix24_agent_tools.integrations.mcp import Bitrix24MCP
from bitrix24_agent_tools.sandbox import Portal
portal = Portal(seed=1)
app = Bitrix24MCP(aclient=AsyncBitrix24(portal.webhook_url, transport=portal.async_transport()), route=True)
assert {t.name for t in app.tools()} == {"b24_route", "b24_load_pack"}
print("mcp ok")
""",
}
SMOKE["openai-agents"] = r"""
from agents import FunctionTool
from bitrix24_agent_tools.client import AsyncBitrix24
from bitrix24_agent_tools.integrations.openai_agents import Bitrix24AgentTools
from bitrix24_agent_tools.sandbox import Portal
portal = Portal(seed=1)
aclient = AsyncBitrix24(portal.webhook_url, transport=portal.async_transport())
face = Bitrix24AgentTools.create(aclient=aclient)
tools = {t.name: t for t in face.tools()}
assert isinstance(tools["b24_crm_update"], FunctionTool) and callable(tools["b24_crm_update"].needs_approval)
print("openai-agents ok")
"""
SMOKE["pydantic-ai"] = r"""
from bitrix24_agent_tools.client import AsyncBitrix24
from bitrix24_agent_tools.integrations.pydantic_ai import Bitrix24Toolset
from bitrix24_agent_tools.sandbox import Portal
portal = Portal(seed=1)
aclient = AsyncBitrix24(portal.webhook_url, transport=portal.async_transport())
face = Bitrix24Toolset.create(aclient=aclient)
assert "b24_crm_update" in face.toolset().tools
print("pydantic-ai ok")
"""
SMOKE["notebook"] = r"""
import matplotlib
matplotlib.use("Agg")
from bitrix24_agent_tools import Bitrix24
from bitrix24_agent_tools.frames import to_dataframe
from bitrix24_agent_tools.sandbox import Portal
portal = Portal(seed=1)
client = Bitrix24(portal.webhook_url, transport=portal.transport())
rows = client.export("crm.deal.list", {"select": ["ID", "TITLE"]})
frame = to_dataframe(rows)
assert len(frame) == len(rows) and list(frame.columns) == ["ID", "TITLE"]
frame["ID"].astype(int).plot.hist()
print("notebook ok")
"""
RUN_NOTEBOOKS = r"""
import pathlib, sys
import nbformat
from nbclient import NotebookClient
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.ipynb")):
    notebook = nbformat.read(path, as_version=4)
    where = {"metadata": {"path": sys.argv[1]}}
    NotebookClient(notebook, timeout=180, kernel_name="python3", resources=where).execute()
    outputs = [o for c in notebook.cells for o in c.get("outputs", [])]
    errors = [o for o in outputs if o.get("output_type") == "error"]
    assert not errors, (path.name, errors[0].get("evalue"))
    print("notebook", path.name, "ok")
"""
SMOKE["langgraph"] = SMOKE["langchain"]
CLI = [["--version"], ["--help"], ["packs"], ["route", "move", "the", "deal", "to", "WON"]]


def run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    if done.returncode != 0:
        sys.stderr.write(f"$ {' '.join(cmd)}\n{done.stdout[-3000:]}{done.stderr[-3000:]}\n")
        raise SystemExit(f"wheel check failed: {' '.join(cmd[:4])}")
    return done


def _pip_wheel(source: Path, out: Path) -> None:
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(source),
        ]
    )


def build_wheel(out: Path) -> Path:
    """From a clean copy of the tracked files (a checkout's build/ or *.egg-info must not leak into the
    wheel)."""
    import shutil

    source = out / "src"
    tracked = run(
        ["git", "-C", str(ROOT), "ls-files", "--cached", "--others", "--exclude-standard"]
    ).stdout.split()
    for name in tracked:
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    _pip_wheel(source, out)
    wheel = next(out.glob("bitrix24_agent_tools-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    heavy = [n for n in names if "/_static/tiktoken/" in n]
    assert not heavy, f"the wheel ships the tiktoken encodings: {heavy}"
    assert any(n.endswith("_static/tool_costs.json") for n in names) and any(
        n.endswith("py.typed") for n in names
    )
    assert not any(n.startswith("bitrix24_sandbox/") for n in names), "the toolkit's wheel ships the sandbox"
    return wheel


def build_sandbox_wheel(out: Path) -> Path:
    """The sandbox's own wheel (sandbox/), into ``out`` (the --find-links directory of every variant)."""
    source = out / "src" / "sandbox"
    _pip_wheel(source, out)
    wheel = next(out.glob("bitrix24_sandbox-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "bitrix24_sandbox/py.typed" in names and not any(
        n.startswith("bitrix24_agent_tools") for n in names
    )
    return wheel


def venv_for(name: str, links: Path) -> Path:
    extra = EXTRAS[name]
    pyproject = (
        (ROOT / "pyproject.toml").read_text()
        + (ROOT / "sandbox" / "pyproject.toml").read_text()
        + (ROOT / "constraints.txt").read_text()
    )
    key = hashlib.sha256(f"{extra}\n{pyproject}".encode()).hexdigest()[:16]
    venv = VENVS / name
    stamp = venv / ".requirements"
    if stamp.exists() and stamp.read_text() == key:
        return venv
    run([sys.executable, "-m", "venv", "--clear", str(venv)])
    py = str(venv / "bin" / "python")
    run(
        [
            py,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-c",
            str(ROOT / "constraints.txt"),
            "--find-links",  # bitrix24-sandbox, the [sandbox] extra, is built here, not fetched
            str(links),
            *_wanted(extra, links),
            *RUNNERS.get(name, []),
        ]
    )  # the dependencies as the wheel declares them
    stamp.write_text(key)
    return venv


def _wanted(extra: str | None, links: Path) -> list[str]:
    if extra is None:  # the sandbox alone
        return [str(next(links.glob("bitrix24_sandbox-*.whl")))]
    return [f"{ROOT}[{extra}]" if extra else str(ROOT)]


def check(name: str, wheel: Path, sandbox_wheel: Path) -> float:
    started = time.perf_counter()
    venv = venv_for(name, sandbox_wheel.parent)
    extra = EXTRAS[name]
    wheels = [str(sandbox_wheel)] if extra is None or "sandbox" in extra.split(",") else []
    if extra is not None:
        wheels.append(str(wheel))
    py = str(venv / "bin" / "python")
    run(
        [
            py,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--force-reinstall",
            *wheels,
        ]
    )
    with tempfile.TemporaryDirectory() as home, tempfile.TemporaryDirectory() as cwd:
        os.chmod(cwd, 0o555)  # a read-only working directory, as MCP desktop hosts start servers from "/"
        env = {"HOME": home, "PATH": "/usr/bin:/bin"}
        try:
            for args in CLI if extra is not None else []:
                run([str(venv / "bin" / "b24-agent-tools"), *args], cwd=cwd, env=env)
            run([py, "-c", SMOKE[name]], cwd=cwd, env=env)
            if name == "bare":  # the demo without its extra says what to install, in one line
                bare = subprocess.run(
                    [str(venv / "bin" / "b24-agent-tools"), "demo"],
                    cwd=cwd,
                    env=env,
                    capture_output=True,
                    text=True,
                )
                assert bare.returncode == 2 and "[langchain,sandbox]" in bare.stderr, bare.stderr[-500:]
            for example in EXAMPLES.get(name, []):  # copied out of the clone: only the wheel is importable
                import shutil

                with tempfile.TemporaryDirectory() as place:
                    shutil.copy2(ROOT / "examples" / example, place)
                    done = run([py, str(Path(place) / example)], cwd=place, env=env)
                    assert done.stdout.strip(), f"{example} printed nothing"
            if name == "notebook":  # every notebook, from the wheel, outside the clone, no network
                import shutil

                with tempfile.TemporaryDirectory() as books:
                    for path in (ROOT / "notebooks").glob("*.ipynb"):
                        shutil.copy2(path, books)
                    run([py, "-c", RUN_NOTEBOOKS, books], cwd=books, env=env)
            if name == "langchain":  # the README's demo, from the wheel alone: no encodings, no clone
                done = run([str(venv / "bin" / "b24-agent-tools"), "demo"], cwd=cwd, env=env)
                assert "confirmed writes" in done.stdout, done.stdout[-500:]
                # the README's eval, from the wheel: the shipped jobs file and the scripted model
                graded = run(
                    [str(venv / "bin" / "b24-agent-tools"), "eval", "--lang", "pl"], cwd=cwd, env=env
                )
                assert "failed 0" in graded.stdout and "silent writes" in graded.stdout, graded.stdout[-500:]
        finally:
            os.chmod(cwd, 0o755)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default=",".join(EXTRAS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        wheel = build_wheel(Path(out))
        sandbox_wheel = build_sandbox_wheel(Path(out))
        for name in [n.strip() for n in args.only.split(",") if n.strip()]:
            print(f"wheel [{name}]: ok in {check(name, wheel, sandbox_wheel):.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
