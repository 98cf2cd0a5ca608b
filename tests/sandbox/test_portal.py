"""The sandbox portal answers like Bitrix24: URL shapes, encodings, envelopes, errors, auth, limits, events
of data."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from bitrix24_agent_tools.sandbox import Portal
from tests.helpers import FakeClock


def post(portal: Portal, path: str, **kwargs: Any) -> httpx.Response:
    with httpx.Client(transport=portal.transport(), base_url=portal.base_url) as http:
        return http.post(path, **kwargs)


def hook(portal: Portal) -> str:
    return f"/rest/1/{portal.webhook_code}"


def test_same_seed_same_data_and_sizes_are_honoured() -> None:
    a, b = Portal(seed=9, deals=50, tasks=3), Portal(seed=9, deals=50, tasks=3)
    assert a.entities("deal") == b.entities("deal") and len(a.entities("deal")) == 50
    assert a.entities("deal") != Portal(seed=10, deals=50).entities("deal")
    assert len(a.entities("task")) == 3 and a.webhook_code != b.webhook_code  # secrets are never seeded


@pytest.mark.parametrize(
    ("path_suffix", "kwargs"),
    [
        ("crm.deal.get.json", {"json": {"id": 2}}),
        ("CRM.Deal.Get", {"data": {"id": "2"}}),
        ("crm.deal.get?id=2", {}),
        (
            "crm.deal.get",
            {"content": b"id=2", "headers": {"content-type": "application/x-www-form-urlencoded"}},
        ),
    ],
)
def test_json_form_and_query_encodings_case_insensitive_with_or_without_json(
    portal: Portal, path_suffix: str, kwargs: Any
) -> None:
    response = post(portal, f"{hook(portal)}/{path_suffix}", **kwargs)
    body = response.json()
    assert response.status_code == 200 and body["result"]["ID"] == "2"
    assert {
        "start",
        "finish",
        "duration",
        "processing",
        "date_start",
        "date_finish",
        "operating_reset_at",
        "operating",
    } <= set(body["time"])


def test_php_style_nested_form_keys(portal: Portal) -> None:
    form = (
        "filter[>OPPORTUNITY]=20000&filter[CATEGORY_ID]=0&select[]=ID&select[]=OPPORTUNITY"
        "&order[ID]=DESC&start=0"
    )
    body = post(
        portal,
        f"{hook(portal)}/crm.deal.list",
        content=form.encode(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    ).json()
    assert body["result"] and all(
        float(d["OPPORTUNITY"]) > 20000 and set(d) == {"ID", "OPPORTUNITY"} for d in body["result"]
    )
    assert [int(d["ID"]) for d in body["result"]] == sorted(
        (int(d["ID"]) for d in body["result"]), reverse=True
    )


@pytest.mark.parametrize(
    ("flt", "check"),
    [
        ({"=STAGE_ID": "WON"}, lambda d: d["STAGE_ID"] == "WON"),
        ({"!STAGE_ID": "WON"}, lambda d: d["STAGE_ID"] != "WON"),
        ({">=OPPORTUNITY": 30000}, lambda d: float(d["OPPORTUNITY"]) >= 30000),
        ({"<ID": 5}, lambda d: int(d["ID"]) < 5),
        ({"%TITLE": "acme"}, lambda d: "acme" in d["TITLE"].lower()),
        (
            {"=%TITLE": "Support%"},
            lambda d: d["TITLE"].startswith("Support"),
        ),  # crm-deal-list.md: % in the value
        ({"%=TITLE": "%Globex"}, lambda d: d["TITLE"].endswith("Globex")),
        ({"=%TITLE": "support plan"}, lambda d: d["TITLE"].lower() == "support plan"),
        ({"@ID": [1, 3, 5]}, lambda d: d["ID"] in ("1", "3", "5")),
        ({"!@ID": [1, 3, 5]}, lambda d: d["ID"] not in ("1", "3", "5")),
    ],
)
def test_filter_operators(portal: Portal, flt: dict[str, Any], check: Any) -> None:
    rows = post(portal, f"{hook(portal)}/crm.deal.list", json={"filter": flt, "select": ["*"]}).json()[
        "result"
    ]
    everything = portal.entities("deal")
    assert len(rows) == len([d for d in everything if check(d)]) and all(check(d) for d in rows)


def test_select_star_and_user_fields(portal: Portal) -> None:
    plain = post(portal, f"{hook(portal)}/crm.deal.list", json={"select": ["*"]}).json()["result"][0]
    both = post(portal, f"{hook(portal)}/crm.deal.list", json={"select": ["*", "UF_*"]}).json()["result"][0]
    assert "UF_CRM_SOURCE_CHANNEL" not in plain and "UF_CRM_SOURCE_CHANNEL" in both


def test_paging_total_next_and_start_minus_one() -> None:
    portal = Portal(seed=1, deals=120)
    first = post(portal, f"{hook(portal)}/crm.deal.list", json={}).json()
    assert len(first["result"]) == 50 and first["total"] == 120 and first["next"] == 50
    last = post(portal, f"{hook(portal)}/crm.deal.list", json={"start": 100}).json()
    assert len(last["result"]) == 20 and "next" not in last
    fast = post(portal, f"{hook(portal)}/crm.deal.list", json={"start": -1}).json()
    assert len(fast["result"]) == 50 and "total" not in fast and "next" not in fast


@pytest.mark.parametrize(
    ("path", "payload", "status", "code"),
    [
        ("/rest/1/wrongcode123/crm.deal.list", {}, 401, "NO_AUTH_FOUND"),
        ("HOOK/crm.nope.list", {}, 404, "ERROR_METHOD_NOT_FOUND"),
        # Legacy CRM errors: HTTP 400, an empty code and a text (crm-deal-get.md, crm-deal-add.md: Error
        # Handling)
        ("HOOK/crm.deal.get", {"id": 999}, 400, ""),
        ("HOOK/crm.deal.add", {"fields": "not an object"}, 400, ""),
        ("HOOK/crm.deal.get", {"id": "abc"}, 400, ""),
        ("/rest/crm.deal.list", {"auth": "not-a-token-at-all"}, 401, "invalid_token"),
    ],
)
def test_error_envelopes_and_statuses(
    portal: Portal, path: str, payload: dict[str, Any], status: int, code: str
) -> None:
    response = post(portal, path.replace("HOOK", hook(portal)), json=payload)
    assert response.status_code == status and response.json()["error"] == code
    assert response.json()["error_description"]


def test_webhook_scopes_and_user_permissions(portal: Portal) -> None:
    task_only = portal.add_webhook(1, scopes={"task"}).split("/rest")[1]
    response = post(portal, f"/rest{task_only}crm.deal.list", json={})
    assert response.status_code == 403 and response.json()["error"] == "insufficient_scope"
    user3 = portal.add_webhook(3).split("/rest")[1]
    mine = post(portal, f"/rest{user3}crm.deal.list", json={"select": ["ID", "ASSIGNED_BY_ID"]}).json()[
        "result"
    ]
    assert mine and all(d["ASSIGNED_BY_ID"] == "3" for d in mine)
    other = next(d for d in portal.entities("deal") if d["ASSIGNED_BY_ID"] != "3")
    denied = post(portal, f"/rest{user3}crm.deal.get", json={"id": other["ID"]})
    # crm-deal-get.md, Error Handling: HTTP 400, empty code, "Access denied"
    assert denied.status_code == 400 and denied.json() == {"error": "", "error_description": "Access denied."}


def test_oauth_authorize_code_token_refresh_and_expiry() -> None:
    clock = FakeClock()
    portal = Portal(seed=1, clock=clock)
    app = portal.register_app(scopes={"crm"}, access_lifetime=60)
    with httpx.Client(transport=portal.transport(), base_url=portal.base_url) as http:
        redirect = http.get(f"/oauth/authorize/?client_id={app.client_id}&state=s1")
        code = redirect.headers["location"].split("code=")[1].split("&")[0]
        tokens = http.post(
            "/oauth/token/",
            data={
                "grant_type": "authorization_code",
                "client_id": app.client_id,
                "client_secret": app.client_secret,
                "code": code,
            },
        ).json()
        assert tokens["member_id"] == portal.member_id and tokens["expires_in"] == 60
        ok = http.post("/rest/crm.deal.get", json={"id": 1, "auth": tokens["access_token"]})
        assert ok.status_code == 200
        assert (
            http.post("/rest/tasks.task.list", json={"auth": tokens["access_token"]}).json()["error"]
            == "insufficient_scope"
        )
        clock.sleep(61)
        expired = http.post("/rest/crm.deal.get", json={"id": 1, "auth": tokens["access_token"]})
        assert expired.status_code == 401 and expired.json()["error"] == "expired_token"
        form = {
            "grant_type": "refresh_token",
            "client_id": app.client_id,
            "client_secret": app.client_secret,
            "refresh_token": tokens["refresh_token"],
        }
        fresh = http.post("/oauth/token/", data=form).json()
        assert fresh["access_token"] != tokens["access_token"]
        reused = http.post("/oauth/token/", data=form)  # a refresh token works once
        assert reused.json()["error"] == "invalid_grant"
        wrong_secret = http.post("/oauth/token/", data={**form, "client_secret": "nope"})
        assert wrong_secret.status_code == 401 and wrong_secret.json()["error"] == "invalid_client"


def test_rest_v3_refuses_form_bodies_and_unmigrated_methods(portal: Portal) -> None:
    v3 = f"/rest/api/1/{portal.webhook_code}"
    form = post(
        portal,
        f"{v3}/tasks.task.get",
        content=b"id=1",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert (
        form.status_code == 400
        and form.json()["error"]["code"] == "BITRIX_REST_V3_EXCEPTION_INVALIDJSONEXCEPTION"
    )
    assert (
        post(portal, f"{v3}/crm.deal.list", json={})
        .json()["error"]["code"]
        .startswith("BITRIX_REST_V3_EXCEPTION_")
    )
    assert "tasks.task.get" in json.dumps(post(portal, f"{v3}/documentation", json={}).json()["result"])


def test_rate_limit_bucket_refuses_above_the_burst_and_drains() -> None:
    clock = FakeClock()
    portal = Portal(seed=1, rate_limit="standard", clock=clock)
    statuses = [post(portal, f"{hook(portal)}/profile", json={}).status_code for _ in range(52)]
    assert statuses[:50] == [200] * 50 and statuses[50:] == [503, 503]
    clock.sleep(1.0)  # drains 2 requests
    assert [post(portal, f"{hook(portal)}/profile", json={}).status_code for _ in range(3)] == [200, 200, 503]


def test_batch_results_errors_totals_and_refs(portal: Portal) -> None:
    body = post(
        portal,
        f"{hook(portal)}/batch",
        json={
            "halt": 0,
            "cmd": {
                "list": "crm.deal.list?filter[%3EID]=25&select[]=ID",
                "one": "crm.deal.get?id=$result[list][0][ID]",
                "bad": "crm.deal.get?id=999",
            },
        },
    ).json()["result"]
    assert body["result"]["one"]["ID"] == "26" and body["result_total"]["list"] == 5
    assert body["result_error"]["bad"] == {"error": "", "error_description": "Not found"}


def test_fault_injection_storm_drop_and_persistence(tmp_path: Any) -> None:
    portal = Portal(seed=1, persist=tmp_path / "portal.json")
    portal.faults.storm(1.0)
    assert post(portal, f"{hook(portal)}/profile", json={}).status_code == 500
    portal.faults.clear()
    portal.faults.drop_next(1)
    with pytest.raises(httpx.RemoteProtocolError):
        post(portal, f"{hook(portal)}/profile", json={})
    new_id = post(portal, f"{hook(portal)}/crm.deal.add", json={"fields": {"TITLE": "kept"}}).json()["result"]
    portal.save()
    again = Portal(seed=1, persist=tmp_path / "portal.json")
    assert again.entity("deal", new_id)["TITLE"] == "kept"


def test_requests_log_masks_the_webhook_code(portal: Portal) -> None:
    post(portal, f"{hook(portal)}/profile", json={})
    assert portal.webhook_code not in repr(portal.requests) and portal.requests[0].path.startswith(
        "/rest/1/***/"
    )


def test_one_hundred_thousand_deals_build() -> None:
    portal = Portal(seed=1, deals=100_000, leads=0, contacts=10, companies=10, tasks=0)
    assert len(portal.state["deal"]) == 100_000


def test_b24pysdk_works_unchanged_over_https(monkeypatch: pytest.MonkeyPatch) -> None:
    from b24pysdk import BitrixWebhook, Client

    portal = Portal(seed=1, deals=120)
    with portal.serve(https=True) as server:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(server.cert_path))  # trust the generated certificate
        sdk = Client(
            BitrixWebhook(domain=server.url.split("://")[1], webhook_token=f"1/{portal.webhook_code}")
        )
        assert sdk.crm.deal.get(bitrix_id=3).result["ID"] == "3"
        assert len(sdk.crm.deal.list(select=["ID"]).as_list().result) == 120
        assert sorted(int(d["ID"]) for d in sdk.crm.deal.list(select=["ID"]).as_list_fast().result) == list(
            range(1, 121)
        )
        new_id = sdk.crm.deal.add(fields={"TITLE": "from b24pysdk"}).result
    assert portal.entity("deal", int(new_id))["TITLE"] == "from b24pysdk"


def test_fast_bitrix24_works_unchanged() -> None:
    import fast_bitrix24

    portal = Portal(seed=1, deals=130)
    with portal.serve(https=True) as server:
        fb = fast_bitrix24.Bitrix(server.webhook_url, verbose=False, ssl=False)
        assert sorted(int(d["ID"]) for d in fb.get_all("crm.deal.list", {"select": ["ID"]})) == list(
            range(1, 131)
        )
        assert len(fb.get_by_ID("crm.deal.get", [1, 2, 3])) == 3
        new_id = fb.call("crm.deal.add", {"fields": {"TITLE": "from fast_bitrix24"}})
    assert portal.entity("deal", int(new_id))["TITLE"] == "from fast_bitrix24"


def test_an_exhausted_operating_budget_blocks_that_method_only() -> None:
    from bitrix24_agent_tools.sandbox import CostModel

    clock = FakeClock()
    portal = Portal(seed=1, clock=clock, operating_limit=0.5, cost_model=CostModel(per_item=0.01))
    statuses = [post(portal, f"{hook(portal)}/crm.deal.list", json={}).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    blocked = post(portal, f"{hook(portal)}/crm.deal.list", json={})
    assert (
        blocked.json()["error"] == "OPERATION_TIME_LIMIT" and "operating_reset_at" in blocked.json()["time"]
    )
    assert (
        post(portal, f"{hook(portal)}/crm.lead.list", json={}).status_code == 200
    )  # other methods keep working
    clock.sleep(601)  # the ten one-minute baskets drop out
    assert post(portal, f"{hook(portal)}/crm.deal.list", json={}).status_code == 200


def test_python_dash_m_sandbox_prints_a_ready_webhook() -> None:
    import socket
    import subprocess
    import sys

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "bitrix24_agent_tools.sandbox", "--port", str(port), "--for-seconds", "20"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        proc.stdout.readline()
        webhook = proc.stdout.readline().split("webhook: ")[1].strip()
        assert webhook.startswith(f"http://127.0.0.1:{port}/rest/1/")
        response = httpx.post(webhook + "crm.deal.get.json", json={"id": 1}, timeout=10)
        assert response.json()["result"]["ID"] == "1"
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_cost_model_delay_leaves_out_the_time_the_sandbox_already_spent() -> None:
    """The modelled processing time is the request's cost on a portal; the emulation's own work is part of it,
    so the server sleeps only the rest (a slow emulation must not make every request cost the model plus
    itself)."""
    import json as _json

    from bitrix24_agent_tools.sandbox import CostModel

    model = CostModel(round_trip=0.0, per_item=0.01, count_cost=0.0, per_offset=0.0)
    portal = Portal(seed=1, deals=200, cost_model=model)
    portal.on_request(lambda record: __import__("time").sleep(0.2))  # the emulation's own work takes 0.2 s
    body = _json.dumps({"select": ["ID"], "start": -1}).encode()
    url = portal.webhook_url + "crm.deal.list.json"
    started = __import__("time").perf_counter()
    status, _, payload, delay = portal.handle("POST", url, {"content-type": "application/json"}, body)
    spent = __import__("time").perf_counter() - started
    rows = len(_json.loads(payload)["result"])
    assert status == 200 and rows == 50
    assert (
        rows * 0.01 - spent - 1e-6 <= delay <= rows * 0.01 - 0.19
    )  # 0.5 s modelled, 0.2 s of it already spent
