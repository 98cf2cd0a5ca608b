"""The commerce pack's typed tools: find products, add one with its price, list orders."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field

from bitrix24_agent_tools.packs import preflight
from bitrix24_agent_tools.packs.base import Call, HandlerGen, ToolContext, ToolSpec
from bitrix24_agent_tools.packs.render import done_output, rows_output


class ProductArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=255)
    price: float = Field(ge=0)
    currency: str = Field("USD", min_length=3, max_length=3)


def product_add(ctx: ToolContext, args: ProductArgs) -> HandlerGen:
    """catalog.product.add then catalog.price.add (base price type 1) in one batch, so the person approves
    both at once and the price cannot be lost if the product is created: ``halt`` stops at the first error."""
    iblock = yield from _catalog(ctx)
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


def _catalog(ctx: ToolContext) -> Any:
    catalogs = yield from preflight.cached(ctx, "catalog.catalog.list", {})
    rows = list((catalogs or {}).get("catalogs") or []) if isinstance(catalogs, dict) else []
    products = [c for c in rows if not c.get("productIblockId")]
    if not products:
        raise ValueError("this portal has no product catalog the credential can read (catalog scope)")
    return int(products[0]["iblockId"])


class ProductFindArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=255, description="part of the name; none: all")
    limit: int = Field(20, ge=1, le=50)


def product_find(ctx: ToolContext, args: ProductFindArgs) -> HandlerGen:
    """catalog.product.list (catalog/product/catalog-product-list.md: ``select`` must name id and iblockId,
    ``filter`` iblockId; ``%name`` is a substring), with each product's base price (catalog.price.list)."""
    iblock = yield from _catalog(ctx)
    flt: dict[str, Any] = {"iblockId": iblock}
    if args.name:
        flt["%name"] = args.name
    response = yield Call(
        "catalog.product.list",
        {"select": ["id", "iblockId", "name", "active", "quantity"], "filter": flt, "order": {"id": "ASC"}},
    )
    products = (
        list((response.result or {}).get("products") or []) if isinstance(response.result, dict) else []
    )
    products = products[: args.limit]
    prices: dict[str, Any] = {}
    if products:
        found = yield Call(
            "catalog.price.list",
            {
                "select": ["productId", "price", "currency"],
                "filter": {"productId": [p["id"] for p in products], "catalogGroupId": 1},
            },
        )
        rows = (found.result or {}).get("prices") or [] if isinstance(found.result, dict) else []
        prices = {str(r.get("productId")): f"{r.get('price')} {r.get('currency')}" for r in rows}
    out = [
        {
            "id": p.get("id"),
            "name": p.get("name"),
            "price": prices.get(str(p.get("id"))),
            "active": p.get("active"),
        }
        for p in products
    ]
    return rows_output(
        ctx,
        out,
        total=response.total,
        searched=f"products named like {args.name!r}" if args.name else "products",
    )


class OrdersArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    paid: bool | None = None
    status: str | None = Field(None, max_length=2, description="e.g. N, P, F")
    text: str | None = Field(None, max_length=255, description="in the comment")


def order_list(ctx: ToolContext, args: OrdersArgs) -> HandlerGen:
    """sale.order.list (sale/order/sale-order-list.md), newest first."""
    flt: dict[str, Any] = {}
    if args.paid is not None:
        flt["payed"] = "Y" if args.paid else "N"
    if args.status:
        flt["statusId"] = args.status.upper()
    if args.text:
        flt["%comments"] = args.text
    response = yield Call(
        "sale.order.list",
        {
            "select": [
                "id",
                "accountNumber",
                "price",
                "currency",
                "payed",
                "statusId",
                "comments",
                "dateInsert",
            ],
            "filter": flt,
            "order": {"id": "DESC"},
        },
    )
    rows = list((response.result or {}).get("orders") or []) if isinstance(response.result, dict) else []
    return rows_output(ctx, rows, total=response.total, searched=f"orders with {flt or 'no filter'}")


def specs() -> list[ToolSpec]:
    return [
        ToolSpec(
            "b24_product_find",
            "Find catalog products with their prices.",
            ProductFindArgs,
            "read",
            ("catalog.product.list", "catalog.price.list", "catalog.catalog.list"),
            product_find,
            "commerce",
        ),
        ToolSpec(
            "b24_order_list",
            "List shop orders.",
            OrdersArgs,
            "read",
            ("sale.order.list",),
            order_list,
            "commerce",
        ),
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
        ),
    ]
