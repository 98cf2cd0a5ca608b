"""The sites pack's typed tools: publish a landing page."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from bitrix24_agent_tools.packs.base import Call, HandlerGen, ToolContext, ToolSpec
from bitrix24_agent_tools.packs.render import done_output


class PublishArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    page_id: int = Field(gt=0)


def page_publish(ctx: ToolContext, args: PublishArgs) -> HandlerGen:
    """landing.landing.publication (landing-landing-publication.md), after checking the page exists."""
    pages = (
        yield Call(
            "landing.landing.getList",
            {"params": {"filter": {"ID": args.page_id}, "select": ["ID", "TITLE", "SITE_ID"]}},
        )
    ).result or []
    if not pages:
        raise ValueError(
            f"page #{args.page_id} does not exist (list pages with b24_sites_call landing.landing.getList)"
        )
    yield Call("landing.landing.publication", {"lid": args.page_id})
    page = pages[0]
    return done_output(
        f"page #{args.page_id} '{page.get('TITLE')}' of site #{page.get('SITE_ID')} published",
        {"id": args.page_id, "site": page.get("SITE_ID")},
    )


def specs() -> list[ToolSpec]:
    return [
        ToolSpec(
            "b24_page_publish",
            "Publish a landing page.",
            PublishArgs,
            "write",
            ("landing.landing.publication", "landing.landing.getList"),
            page_publish,
            "sites",
        )
    ]
