"""The commerce pack's typed tools: add a product with its price."""

from __future__ import annotations

from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field

from bitrix24_agent_tools.packs import preflight
from bitrix24_agent_tools.packs.base import Call, HandlerGen, ToolContext, ToolSpec
from bitrix24_agent_tools.packs.render import done_output


class ProductArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=255)
    price: float = Field(ge=0)
    currency: str = Field("USD", min_length=3, max_length=3)


def product_add(ctx: ToolContext, args: ProductArgs) -> HandlerGen:
    """catalog.product.add then catalog.price.add (base price type 1) in one batch, so the person approves
    both at once and the price cannot be lost if the product is created: ``halt`` stops at the first error."""
    catalogs = yield from preflight.cached(ctx, "catalog.catalog.list", {})
    rows = list((catalogs or {}).get("catalogs") or []) if isinstance(catalogs, dict) else []
    products = [c for c in rows if not c.get("productIblockId")]
    if not products:
        raise ValueError("this portal has no product catalog the credential can read (catalog scope)")
    iblock = int(products[0]["iblockId"])
    currency = args.currency.upper()
    currencies = yield from preflight.cached(ctx, "crm.currency.list", {})
    known = [str(c.get("CURRENCY")) for c in currencies or [] if isinstance(c, dict)]
    if known and currency not in known:
        raise ValueError(f"unknown currency {args.currency!r}; this portal has {', '.join(known)}")
    cmd = {
        "product": "catalog.product.add?"
        + urlencode({"fields[iblockId]": iblock, "fields[name]": args.name}),
        "price": "catalog.price.add?"
        + urlencode({"fields[catalogGroupId]": 1, "fields[price]": args.price, "fields[currency]": currency})
        + "&fields[productId]=$result[product][element][id]",
    }
    response = yield Call("batch", {"halt": 1, "cmd": cmd})
    result = response.result or {}
    errors = result.get("result_error") or {}
    if errors:
        raise ValueError(f"the portal refused: {errors}")
    product = ((result.get("result") or {}).get("product") or {}).get("element") or {}
    return done_output(
        f"product #{product.get('id')} '{args.name}' added at {args.price:g} {currency}",
        {"id": product.get("id"), "price": args.price, "currency": currency},
    )


def specs() -> list[ToolSpec]:
    return [
        ToolSpec(
            "b24_product_add",
            "Add a catalog product with its price.",
            ProductArgs,
            "write",
            (
                "batch",
                "catalog.product.add",
                "catalog.price.add",
                "catalog.catalog.list",
                "crm.currency.list",
            ),
            product_add,
            "commerce",
        )
    ]
