"""One worker process of the multi-process Redis tests (limiter, refresh, idempotency)."""

from __future__ import annotations

import json
import sys
import time

from bitrix24_agent_tools.client import Bitrix24, OAuth, RatePlan


def main() -> None:
    mode, redis_url, start_at = sys.argv[1], sys.argv[2], float(sys.argv[3])
    args = json.loads(sys.argv[4])
    while time.time() < start_at:  # start together
        time.sleep(0.001)
    if mode == "limiter":
        plan = RatePlan.custom(args["rate"], args["burst"])
        client = Bitrix24(args["webhook"], limiter=redis_url, plan=plan)
        for _ in range(args["calls"]):
            client.call("profile")
        print("ok")
    elif mode == "refresh":
        auth = OAuth(
            args["domain"],
            args["access"],
            args["refresh"],
            args["client_id"],
            args["secret"],
            oauth_server=args["oauth_server"],
            client_endpoint=args["endpoint"],
            token_store=redis_url,
        )
        print(Bitrix24(auth).call("profile").result["ID"])
    elif mode == "write":
        from bitrix24_agent_tools.confirmers import approve_all
        from bitrix24_agent_tools.guard import Guard, Policy
        from bitrix24_agent_tools.toolbox import Toolbox

        box = Toolbox(
            Bitrix24(args["webhook"]), guard=Guard(Policy.writer(), approve_all, idempotency=redis_url)
        )
        print(
            box.run(
                "b24_crm_create",
                {"entity": "lead", "fields": {"TITLE": "Web form 991", "ORIGIN_ID": "form-991"}},
            ).content
        )


if __name__ == "__main__":
    main()
