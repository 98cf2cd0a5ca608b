"""Any client can test against the sandbox (issue #30): plain httpx and Node's own fetch (no SDK) over
loopback HTTPS with the sandbox's generated certificate — JSON and form-encoded bodies, paging, errors —
beside b24pysdk and fast_bitrix24 (tests/sandbox/test_portal.py)."""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess

import httpx
import pytest

from bitrix24_agent_tools.sandbox import Portal


def test_plain_httpx_json_and_form_bodies_paging_and_errors() -> None:
    portal = Portal(seed=1, deals=70)
    with (
        portal.serve(https=True) as server,
        httpx.Client(verify=ssl.create_default_context(cafile=str(server.cert_path))) as http,
    ):
        base = server.webhook_url.rstrip("/")
        made = http.post(f"{base}/crm.deal.add.json", json={"fields": {"TITLE": "via JSON"}}).json()
        form = http.post(f"{base}/crm.deal.add", data={"fields[TITLE]": "via form"}).json()
        page = http.post(f"{base}/crm.deal.list", json={"select": ["ID"], "start": 50}).json()
        missing = http.post(f"{base}/crm.deal.get", json={"id": 99999})
    assert portal.entity("deal", int(made["result"]))["TITLE"] == "via JSON"
    assert portal.entity("deal", int(form["result"]))["TITLE"] == "via form"
    assert page["total"] == 72 and len(page["result"]) == 22 and "next" not in page
    assert missing.status_code == 400 and missing.json()["error_description"]


_NODE = r"""
const base = process.argv[1];
const post = async (method, body, form) => {
  const init = form
    ? {method: 'POST', body: new URLSearchParams(body)}
    : {method: 'POST', headers: {'content-type': 'application/json'}, body: JSON.stringify(body)};
  const res = await fetch(`${base}/${method}`, init);
  return {status: res.status, body: await res.json()};
};
(async () => {
  const made = await post('crm.deal.add.json', {fields: {TITLE: 'from node'}});
  const form = await post('crm.contact.add', {'fields[NAME]': 'Node', 'fields[LAST_NAME]': 'Form'}, true);
  const all = [];
  for (let start = 0; start !== undefined; ) {
    const page = await post('crm.deal.list', {select: ['ID'], start});
    all.push(...page.body.result.map(d => Number(d.ID)));
    start = page.body.next;
  }
  const wrong = await post('crm.deal.get', {id: 99999});
  console.log(JSON.stringify({made: made.body.result, form: form.body.result, all, wrong}));
})().catch(e => { console.error(e); process.exit(1); });
"""


def test_nodes_fetch_works_against_the_sandbox_over_https() -> None:
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("no Node.js: CI must run the non-Python client (.ci/run installs Debian's nodejs)")
        pytest.skip("no Node.js on this machine")
    portal = Portal(seed=1, deals=60)
    with portal.serve(https=True) as server:
        done = subprocess.run(
            [node, "-e", _NODE, server.webhook_url.rstrip("/")],
            capture_output=True,
            text=True,
            timeout=60,
            env={"NODE_EXTRA_CA_CERTS": str(server.cert_path), "PATH": "/usr/bin:/bin"},
        )
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout)
    assert portal.entity("deal", int(out["made"]))["TITLE"] == "from node"
    contact = portal.entity("contact", int(out["form"]))
    assert (contact["NAME"], contact["LAST_NAME"]) == ("Node", "Form")
    assert sorted(out["all"]) == sorted(int(i) for i in portal.state["deal"])
    assert out["wrong"]["status"] == 400 and out["wrong"]["body"]["error_description"] == "Not found"


def test_the_emulator_is_a_package_of_its_own_that_imports_nothing_of_the_toolkit() -> None:
    """The emulator follows the docs on its own (design.md): it reads no parser, contract or risk model of the
    toolkit, so it can catch the toolkit's mistakes, and anyone can install it alone (sandbox/pyproject.toml).
    With the toolkit made unimportable, a portal is built, served in-process and answers; no module of the
    toolkit was loaded, and no source file of the package names it."""
    import sys
    from pathlib import Path

    import bitrix24_sandbox

    script = (
        "import sys, json\n"
        "sys.modules['bitrix24_agent_tools'] = None\n"
        "import httpx, bitrix24_sandbox\n"
        "portal = bitrix24_sandbox.Portal(seed=1)\n"
        "with httpx.Client(transport=portal.transport()) as client:\n"
        "    reply = client.post(portal.webhook_url + 'crm.deal.list.json', json={'select': ['ID']}).json()\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('bitrix24_agent_tools') and sys.modules[m])\n"
        "print(json.dumps({'total': reply['total'], 'loaded': loaded}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == {"total": 30, "loaded": []}
    sources = Path(bitrix24_sandbox.__file__).parent
    naming = [
        p.name for p in sources.rglob("*.py") if "bitrix24_agent_tools" in p.read_text(encoding="utf-8")
    ]
    assert naming == []


def test_the_toolkit_layer_is_the_same_emulator_with_its_oauth_convenience() -> None:
    """``bitrix24_agent_tools.sandbox`` stays importable for existing tests: the same classes and modules
    (old module paths name the emulator's), plus ``Portal.app_auth`` building the toolkit's OAuth from the
    portal's ``app_credentials``."""
    import bitrix24_sandbox
    import bitrix24_sandbox.portal

    from bitrix24_agent_tools.client.auth import OAuth
    from bitrix24_agent_tools.sandbox import CostModel
    from bitrix24_agent_tools.sandbox import Portal as ToolkitPortal
    from bitrix24_agent_tools.sandbox.portal import CostModel as OldPath

    assert CostModel is OldPath is bitrix24_sandbox.CostModel
    import importlib
    import pkgutil

    for module in pkgutil.iter_modules(bitrix24_sandbox.__path__):  # every old module path still resolves
        if not module.name.startswith("_"):
            old = importlib.import_module(f"bitrix24_agent_tools.sandbox.{module.name}")
            assert old is importlib.import_module(f"bitrix24_sandbox.{module.name}")
    portal = ToolkitPortal(seed=1)
    assert isinstance(portal, bitrix24_sandbox.portal.Portal)
    app = portal.register_app()
    tokens = portal.install_app(app)
    auth = portal.app_auth(app, tokens)
    assert isinstance(auth, OAuth)
    assert portal.app_credentials(app, tokens)["client_endpoint"] == tokens["client_endpoint"]
