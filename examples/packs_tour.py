"""Every pack, one everyday job each, on a sandbox portal: the router picks the pack from the request, the
pack's tool does the job, a person (here: a script) approves each write, and the portal's state shows the
result.

    python examples/packs_tour.py
"""

from __future__ import annotations

from bitrix24_agent_tools import Bitrix24, Decision, Guard, Policy, Toolbox
from bitrix24_agent_tools.client import OAuth
from bitrix24_agent_tools.packs import PACKS
from bitrix24_agent_tools.sandbox import Portal

# (request, tool, arguments): for packs without a typed tool for the job, the pack's allowlisted generic call.
JOBS = [
    (
        "Send Boris a chat message about lunch",
        "b24_chat_send",
        {"dialog_id": "2", "message": "Lunch at noon?"},
    ),
    (
        "Start the deal approval business process on deal 4",
        "b24_workflow_start",
        {"template_id": 1, "entity": "deal", "id": 4},
    ),
    (
        "Post a welcome message in the live feed",
        "b24_feed_post",
        {"message": "Welcome, Galina!", "title": "Hello"},
    ),
    (
        "Upload the brief to the Marketing folder on Drive",
        "b24_file_upload",
        {"folder_id": 5, "name": "brief.txt", "text": "Spring campaign brief"},
    ),
    ("Add task 1 to the current sprint", "b24_sprint_add_task", {"task_id": 1}),
    (
        "Add a product 'Onboarding kit' to the catalog at 250 USD",
        "b24_product_add",
        {"name": "Onboarding kit", "price": 250, "currency": "USD"},
    ),
    (
        "Book meeting room A on March 1st at 10",
        "b24_book",
        {
            "resource": "meeting room",
            "start": "2027-03-01T10:00",
            "end": "2027-03-01T11:00",
            "name": "Design review",
        },
    ),
    ("Which AI engines are registered for CoPilot?", "b24_platform_call", {"method": "ai.engine.list"}),
    ("Publish the landing page Contacts", "b24_page_publish", {"page_id": 2}),
    ("Show the consent agreements", "b24_compliance_call", {"method": "userconsent.agreement.list"}),
    (
        "Which methods can this app call: is landing.site.add one?",
        "b24_check_method",
        {"method": "landing.site.add"},
    ),
]


def main() -> int:
    portal = Portal(seed=1)
    app = portal.register_app()  # some methods need an application (entity.*, bizproc.robot.*): use OAuth
    tokens = portal.install_app(app)
    client = Bitrix24(
        OAuth(
            portal.domain,
            tokens["access_token"],
            tokens["refresh_token"],
            app.client_id,
            app.client_secret,
            oauth_server=portal.oauth_server,
            client_endpoint=tokens["client_endpoint"],
        ),
        transport=portal.transport(),
    )

    def person(request):  # type: ignore[no-untyped-def]
        print(f"    asked: {request.summary[:110]}")
        return Decision.approve(by="me")

    failures = 0
    for text, tool, args in JOBS:
        every_pack = tuple(PACKS)  # the operator's packs bound what routing may reach
        box = Toolbox(client, packs=every_pack, guard=Guard(Policy.writer(), person)).for_request(text)
        print(f"{text}\n  packs {', '.join(box.packs)} → {tool}")
        if tool not in {spec.name for spec in box.specs}:
            print("    the router did not offer this tool")
            failures += 1
            continue
        out = box.run(tool, args)
        print(f"    {'ERROR ' if out.is_error else ''}{out.content[:160]}")
        failures += out.is_error
    published = portal.state["landing_page"][2]["PUBLIC"] == "Y"
    print(
        f"\npage 2 published: {published}; files in Marketing: "
        f"{[o['NAME'] for o in portal.state['disk_object'].values() if o['PARENT_ID'] == '5']}"
    )
    return 0 if failures == 0 and published else 1


if __name__ == "__main__":
    raise SystemExit(main())
