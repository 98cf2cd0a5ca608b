"""The sites pack's typed tools: the sites with their pages, publish a page."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from bitrix24_agent_tools.packs.base import Call, HandlerGen, ToolContext, ToolSpec
from bitrix24_agent_tools.packs.render import done_output, rows_output


class PublishArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    page_id: int = Field(gt=0, description="b24_site_list")


def page_publish(ctx: ToolContext, args: PublishArgs) -> HandlerGen:
    """landing.landing.publication (landing-landing-publication.md), after checking the page exists."""
    pages = (
        yield Call(
            "landing.landing.getList",
            {"params": {"filter": {"ID": args.page_id}, "select": ["ID", "TITLE", "SITE_ID"]}},
        )
    ).result or []
    if not pages:
        raise ValueError(f"page #{args.page_id} does not exist (see b24_site_list)")
    yield Call("landing.landing.publication", {"lid": args.page_id})
    page = pages[0]
    return done_output(
        f"page #{args.page_id} '{page.get('TITLE')}' of site #{page.get('SITE_ID')} published",
        {"id": args.page_id, "site": page.get("SITE_ID")},
    )


class SitesArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=255, description="part of a site's or page's title")


def site_list(ctx: ToolContext, args: SitesArgs) -> HandlerGen:
    """landing.site.getList and landing.landing.getList (landing/site/landing-site-get-list.md,
    landing/page/landing-landing-get-list.md): every site with its pages, published or not."""
    sites = (
        yield Call("landing.site.getList", {"params": {"select": ["ID", "TITLE", "ACTIVE"]}})
    ).result or []
    pages = (
        yield Call(
            "landing.landing.getList",
            {"params": {"select": ["ID", "TITLE", "SITE_ID", "ACTIVE", "PUBLIC"]}},
        )
    ).result or []
    needle = (args.name or "").casefold()
    rows = []
    for site in sites:
        own = [p for p in pages if str(p.get("SITE_ID")) == str(site.get("ID"))]
        if needle and needle not in str(site.get("TITLE", "")).casefold():
            own = [p for p in own if needle in str(p.get("TITLE", "")).casefold()]
            if not own:
                continue
        rows.append(
            {
                "site_id": site.get("ID"),
                "site": site.get("TITLE"),
                "pages": [
                    {"page_id": p.get("ID"), "title": p.get("TITLE"), "published": p.get("PUBLIC") == "Y"}
                    for p in own
                ],
            }
        )
    return rows_output(
        ctx, rows, searched=f"sites and pages titled like {args.name!r}" if args.name else "sites"
    )


def specs() -> list[ToolSpec]:
    return [
        ToolSpec(
            "b24_site_list",
            "List sites and their pages.",
            SitesArgs,
            "read",
            ("landing.site.getList", "landing.landing.getList"),
            site_list,
            "sites",
        ),
        ToolSpec(
            "b24_page_publish",
            "Publish a landing page.",
            PublishArgs,
            "write",
            ("landing.landing.publication", "landing.landing.getList"),
            page_publish,
            "sites",
        ),
    ]
