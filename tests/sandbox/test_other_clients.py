"""Any client can test against the sandbox (issue #30): plain httpx and Node's own fetch (no SDK) over
loopback HTTPS with the sandbox's generated certificate — JSON and form-encoded bodies, paging, errors —
beside b24pysdk and fast_bitrix24 (tests/sandbox/test_portal.py)."""

from __future__ import annotations

import json
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


def test_the_emulator_imports_nothing_of_the_toolkit_but_one_convenience() -> None:
    """The emulator follows the docs on its own (design.md): it reads no parser, contract or risk model of the
    toolkit, so it can catch the toolkit's mistakes. Only ``Portal.app_auth`` builds the toolkit's OAuth
    credential for the toolkit's users; ``__init__`` is the toolkit's side (it registers secret masking)."""
    import re
    from pathlib import Path

    import bitrix24_agent_tools.sandbox as sandbox

    allowed = {("portal.py", "bitrix24_agent_tools.client.auth")}
    found = set()
    for path in Path(sandbox.__file__).parent.glob("*.py"):
        if path.name == "__init__.py":
            continue
        for name in re.findall(
            r"bitrix24_agent_tools\.(?!sandbox\b)[\w.]+", path.read_text(encoding="utf-8")
        ):
            found.add((path.name, name))
    assert found <= allowed, sorted(found - allowed)
