"""The core in 30 lines: a client, a guarded toolbox and a person who approves writes — on a sandbox portal.

python examples/quickstart.py
"""

from __future__ import annotations

from bitrix24_agent_tools import Bitrix24, Decision, Guard, Policy, Toolbox
from bitrix24_agent_tools.sandbox import Portal


def main() -> int:
    portal = Portal(seed=1)  # swap for Bitrix24.from_env() to use your portal (B24_WEBHOOK_URL)
    client = Bitrix24(portal.webhook_url, transport=portal.transport())

    def person(request):  # type: ignore[no-untyped-def]
        print(f"  asked: {request.summary}")
        return Decision.approve(by="me") if request.risk == "write" else Decision.reject("not today")

    box = Toolbox(client, packs=("core",), guard=Guard(Policy.writer(), person))
    print(box.run("b24_crm_list", {"entity": "deal", "filter": {">OPPORTUNITY": 40000}, "limit": 3}).content)
    print(box.run("b24_deal_move", {"id": 2, "stage_id": "WON"}).content)
    print(box.run("b24_core_call", {"method": "crm.deal.delete", "params": {"id": 2}}).content)
    print(box.run("b24_crm_list", {"entity": "planet"}).content)  # a model's mistake: one line back, no crash
    return 0 if portal.entity("deal", 2)["STAGE_ID"] == "WON" else 1


if __name__ == "__main__":
    raise SystemExit(main())
