"""One process of the cross-process refresh test: call the served sandbox with the shared token store."""

from __future__ import annotations

import json
import sys

from bitrix24_agent_tools.client import Bitrix24, OAuth, SqliteTokenStore


def main() -> int:
    config = json.loads(sys.argv[1])
    auth = OAuth(
        config["domain"],
        config["access_token"],
        config["refresh_token"],
        config["client_id"],
        config["client_secret"],
        token_store=SqliteTokenStore(config["store"]),
        oauth_server=config["oauth_server"],
        client_endpoint=config["client_endpoint"],
    )
    with Bitrix24(auth, verify=False) as client:
        for _ in range(3):
            client.call("crm.deal.list", {"select": ["ID"]})
    print("ok")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
