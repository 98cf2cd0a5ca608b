"""Trade catalog (catalog.product.*, catalog.price.*) and orders (sale.order.*, sale.payment.*,
sale.delivery.*).

These methods answer errors with numeric codes (the sandbox sends them as strings) and wrap results in a named
object: ``{"orders": [...]}``, ``{"order": {...}}``, ``{"product": {...}}``, ``{"price": {...}}``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bitrix24_sandbox.errors import ApiError
from bitrix24_sandbox.registry import Listing, method, now_iso, paged, positive, table
from bitrix24_sandbox.types import Caller

if TYPE_CHECKING:
    from bitrix24_sandbox.store import Store

_CATALOG_IBLOCK = 23
_CURRENCIES = {"USD", "EUR", "RUB", "GBP"}
_PAY_SYSTEMS = {1: "Bank transfer", 2: "Cash", 3: "Card"}


def _fields(params: dict[str, Any]) -> dict[str, Any]:
    fields = params.get("fields")
    if not isinstance(fields, dict) or not fields:
        raise ApiError("100", "Parameter `fields` is not specified or is empty", 400)
    return fields


def _id_param(params: dict[str, Any]) -> int:
    value = positive(params.get("id"))
    if value is None:
        raise ApiError("100", "Parameter `id` not specified", 400)
    return value


def _filtered(rows: list[dict[str, Any]], params: dict[str, Any]) -> list[dict[str, Any]]:
    flt = params.get("filter") or {}
    if not isinstance(flt, dict):
        raise ApiError("0", "Parameter `filter` must be an object", 400)
    out = []
    for row in rows:
        ok = True
        for key, wanted in flt.items():
            name = str(key)
            # the operations the catalog and sale list pages describe: >=, <=, >, <, @ (IN), !@ (NOT IN),
            # % (LIKE), != and ! (not equal), = (default)
            for op in ("!@", ">=", "<=", "!=", ">", "<", "@", "%", "!", "="):
                if name.startswith(op):
                    name = name[len(op) :]
                    break
            else:
                op = "="
            if name not in row:
                raise ApiError("0", f"Unknown field `{name}` in the filter", 400)  # UNVERIFIED text
            have = row[name]
            values = {str(w) for w in (wanted if isinstance(wanted, list) else [wanted])}
            if op == "%":
                ok = str(wanted).lower() in str(have).lower()
            elif op in ("=", "@"):
                ok = str(have) in values
            elif op in ("!", "!=", "!@"):
                ok = str(have) not in values
            else:
                try:
                    a, b = float(have), float(wanted)
                except (TypeError, ValueError):
                    a, b = str(have), str(wanted)  # type: ignore[assignment]
                ok = {">": a > b, "<": a < b, ">=": a >= b, "<=": a <= b}[op]
            if not ok:
                break
        if ok:
            out.append(row)
    return out


def _listing(rows: list[dict[str, Any]], params: dict[str, Any], key: str) -> Listing:
    select = params.get("select")
    if isinstance(select, list) and select and "*" not in select:
        rows = [{k: v for k, v in r.items() if k in select} for r in rows]
    return paged(rows, params.get("start"), key)


# --- catalog ------------------------------------------------------------------------------------------------


@method("catalog.catalog.list", "catalog")
def catalog_list(store: Store, params: dict[str, Any], caller: Caller) -> Listing:
    """catalog/catalog/catalog-catalog-list.md: the product catalog (iblock 23) and its offers catalog
    (24)."""
    rows = [
        {
            "iblockId": _CATALOG_IBLOCK,
            "iblockTypeId": "CRM_PRODUCT_CATALOG",
            "id": _CATALOG_IBLOCK,
            "lid": "s1",
            "name": "Product catalog",
            "productIblockId": None,
            "skuPropertyId": None,
            "subscription": "N",
            "vatId": 1,
        },
        {
            "iblockId": _CATALOG_IBLOCK + 1,
            "iblockTypeId": "CRM_PRODUCT_CATALOG",
            "id": _CATALOG_IBLOCK + 1,
            "lid": "s1",
            "name": "Product catalog (offers)",
            "productIblockId": _CATALOG_IBLOCK,
            "skuPropertyId": 97,
            "subscription": "N",
            "vatId": 1,
        },
    ]
    return _listing(_filtered(rows, params), params, "catalogs")


@method("catalog.product.list", "catalog")
def product_list(store: Store, params: dict[str, Any], caller: Caller) -> Listing:
    """catalog/product/catalog-product-list.md: ``select`` must name id and iblockId, ``filter`` iblockId."""
    select = params.get("select")
    if not isinstance(select, list) or not {"id", "iblockId"} <= set(select):
        raise ApiError("0", "Fields `id`, `iblockId` are not specified in the selection fields", 400)
    flt = params.get("filter")
    if not isinstance(flt, dict) or "iblockId" not in flt:
        raise ApiError("0", "Field `iblockId` is not specified in the filter", 400)
    rows = _filtered([dict(p) for p in table(store, "catalog_product").values()], params)
    return _listing(rows, params, "products")


def _product(store: Store, product_id: int) -> dict[str, Any]:
    product = table(store, "catalog_product").get(product_id)
    if product is None:
        raise ApiError("0", "The product does not exist", 400)
    return product


@method("catalog.product.get", "catalog")
def product_get(store: Store, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    return {"product": dict(_product(store, _id_param(params)))}


_PRODUCT_FIELDS = {
    "name",
    "active",
    "code",
    "xmlId",
    "previewText",
    "detailText",
    "sort",
    "quantity",
    "vatIncluded",
    "purchasingPrice",
    "purchasingCurrency",
    "iblockSectionId",
    "weight",
    "height",
    "length",
    "width",
    "canBuyZero",
    "dateActiveFrom",
    "dateActiveTo",
    "previewTextType",
    "detailTextType",
    "subscribe",
}


def _product_fields(store: Store, fields: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(fields) - _PRODUCT_FIELDS - {"iblockId"})
    if unknown:  # UNVERIFIED text; the portal rejects fields the product type does not have
        raise ApiError("0", f"Unknown fields: {', '.join(unknown)}", 400)
    if "purchasingCurrency" in fields and str(fields["purchasingCurrency"]) not in _CURRENCIES:
        raise ApiError("0", "The specified purchasing price currency does not exist", 400)
    if "iblockSectionId" in fields and fields["iblockSectionId"] not in (None, "", 0, "0"):
        raise ApiError("0", "Section with the specified identifier does not exist", 400)
    return {k: v for k, v in fields.items() if k != "iblockId"}


@method("catalog.product.add", "catalog")
def product_add(store: Store, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """catalog/product/catalog-product-add.md: iblockId and name are required; the result is ``{element}``."""
    fields = _fields(params)
    if positive(fields.get("iblockId")) != _CATALOG_IBLOCK:
        raise ApiError("200040300000", "Information block with the specified identifier does not exist", 400)
    if not str(fields.get("name") or "").strip():
        raise ApiError("0", "Required fields: name", 400)
    product_id = store.next_id("catalog_product")
    product = {
        "id": product_id,
        "iblockId": _CATALOG_IBLOCK,
        "active": "Y",
        "available": "Y",
        "code": None,
        "xmlId": str(product_id),
        "createdBy": caller.user_id,
        "dateCreate": now_iso(store),
        "sort": 500,
        "quantity": 0,
        "vatIncluded": "Y",
        "previewText": None,
        "detailText": None,
        "iblockSectionId": None,
    }
    product.update(_product_fields(store, fields))
    table(store, "catalog_product")[product_id] = product
    return {"element": dict(product)}


@method("catalog.product.update", "catalog")
def product_update(store: Store, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    product = _product(store, _id_param(params))
    fields = _fields(params)
    if "name" in fields and not str(fields["name"] or "").strip():
        raise ApiError("0", "Required fields: name", 400)
    product.update(_product_fields(store, fields))
    return {"element": dict(product)}


@method("catalog.price.list", "catalog")
def price_list(store: Store, params: dict[str, Any], caller: Caller) -> Listing:
    """catalog/price/catalog-price-list.md: ``{prices: [...]}``."""
    return _listing(
        _filtered([dict(p) for p in table(store, "catalog_price").values()], params), params, "prices"
    )


@method("catalog.price.add", "catalog")
def price_add(store: Store, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """catalog/price/catalog-price-add.md: productId, catalogGroupId, price, currency; one price per price
    type."""
    fields = _fields(params)
    missing = [k for k in ("productId", "catalogGroupId", "price", "currency") if fields.get(k) in (None, "")]
    if missing:
        raise ApiError("0", f"Required fields: {', '.join(missing)}", 400)
    product = _product(store, positive(fields["productId"]) or 0)
    if positive(fields["catalogGroupId"]) != 1:
        raise ApiError("0", "Validate price error. Catalog price group is wrong", 400)
    if str(fields["currency"]) not in _CURRENCIES:
        raise ApiError("0", "Validate price error. Currency is wrong", 400)  # UNVERIFIED text
    try:
        amount = float(fields["price"])
    except (TypeError, ValueError):
        raise ApiError("0", "Validate price error. Price is wrong", 400) from None  # UNVERIFIED text
    prices = table(store, "catalog_price")
    if any(p["productId"] == product["id"] and p["catalogGroupId"] == 1 for p in prices.values()):
        raise ApiError("0", "Validate price error. Catalog product is allowed has only single price", 400)
    price_id = store.next_id("catalog_price")
    price = {
        "id": price_id,
        "productId": product["id"],
        "catalogGroupId": 1,
        "currency": str(fields["currency"]),
        "price": amount,
        "extraId": None,
        "quantityFrom": None,
        "quantityTo": None,
        "timestampX": now_iso(store),
    }
    prices[price_id] = price
    return {"price": dict(price)}


# --- orders -------------------------------------------------------------------------------------------------

_ORDER_FIELDS = {
    "lid",
    "personTypeId",
    "currency",
    "price",
    "discountValue",
    "userId",
    "comments",
    "userDescription",
    "additionalInfo",
    "statusId",
    "canceled",
    "reasonCanceled",
    "marked",
    "reasonMarked",
    "responsibleId",
    "companyId",
    "orderTopic",
    "xmlId",
    "externalOrder",
    "recountFlag",
}


def _order(store: Store, order_id: int, code: str = "201240400001") -> dict[str, Any]:
    order = table(store, "sale_order").get(order_id)
    if order is None:
        raise ApiError(code, "Order not found" if code.startswith("2012") else "order does not exist", 400)
    return order


def _order_fields(fields: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(fields) - _ORDER_FIELDS)
    if unknown:
        raise ApiError("0", f"Unknown fields: {', '.join(unknown)}", 400)  # UNVERIFIED text
    if "currency" in fields and str(fields["currency"]) not in _CURRENCIES:
        raise ApiError("0", "Currency is not found", 400)  # UNVERIFIED text
    return fields


def _with_payments(store: Store, order: dict[str, Any]) -> dict[str, Any]:
    payments = [dict(p) for p in table(store, "sale_payment").values() if p["orderId"] == order["id"]]
    return {**order, "payments": payments}


@method("sale.order.list", "sale")
def order_list(store: Store, params: dict[str, Any], caller: Caller) -> Listing:
    rows = _filtered(
        [{k: v for k, v in o.items() if k != "basketItems"} for o in table(store, "sale_order").values()],
        params,
    )
    return _listing(rows, params, "orders")


@method("sale.order.get", "sale")
def order_get(store: Store, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """sale/order/sale-order-get.md: the order with its basket and payments."""
    return {"order": _with_payments(store, _order(store, _id_param(params)))}


@method("sale.order.add", "sale")
def order_add(store: Store, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """sale/order/sale-order-add.md: lid, personTypeId and currency are required."""
    fields = _fields(params)
    missing = [k for k in ("lid", "personTypeId", "currency") if fields.get(k) in (None, "")]
    if missing:
        raise ApiError("0", f"Required fields are not provided: {', '.join(missing)}", 400)
    order_id = store.next_id("sale_order")
    when = now_iso(store)
    order = {
        "id": order_id,
        "accountNumber": str(order_id),
        "lid": "s1",
        "personTypeId": 1,
        "currency": "USD",
        "price": 0.0,
        "payed": "N",
        "canceled": "N",
        "statusId": "N",
        "userId": caller.user_id,
        "companyId": None,
        "responsibleId": caller.user_id,
        "comments": "",
        "dateInsert": when,
        "dateUpdate": when,
        "discountValue": 0,
        "marked": "N",
        "basketItems": [],
    }
    order.update(_order_fields(fields))
    table(store, "sale_order")[order_id] = order
    return {"order": _with_payments(store, order)}


@method("sale.order.update", "sale")
def order_update(store: Store, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    if positive(params.get("id")) is None:
        raise ApiError("100", "The `id` parameter is missing", 400)
    order = _order(store, positive(params["id"]) or 0, "200540400001")
    order.update(_order_fields(_fields(params)))
    order["dateUpdate"] = now_iso(store)
    return {"order": _with_payments(store, order)}


@method("sale.payment.list", "sale")
def payment_list(store: Store, params: dict[str, Any], caller: Caller) -> Listing:
    """sale/payment/sale-payment-list.md; its example filters by the order's personTypeId, so a payment is
    matched on its order's fields too (UNVERIFIED which order fields the portal joins: personTypeId here)."""
    orders = table(store, "sale_order")
    rows = [
        {**p, "personTypeId": (orders.get(int(p.get("orderId") or 0)) or {}).get("personTypeId")}
        for p in table(store, "sale_payment").values()
    ]
    found = _filtered(rows, params)
    if not (isinstance(params.get("select"), list) and "personTypeId" in params["select"]):
        found = [{k: v for k, v in p.items() if k != "personTypeId"} for p in found]
    return _listing(found, params, "payments")


@method("sale.payment.add", "sale")
def payment_add(store: Store, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """sale/payment/sale-payment-add.md: orderId and paySystemId are required; a paid payment that covers the
    order marks it paid."""
    fields = _fields(params)
    missing = [k for k in ("orderId", "paySystemId") if fields.get(k) in (None, "")]
    if missing:
        raise ApiError("0", f"Required fields are not provided: {', '.join(missing)}", 400)
    order = _order(store, positive(fields["orderId"]) or 0)
    system = positive(fields["paySystemId"])
    if system not in _PAY_SYSTEMS:
        raise ApiError("0", "Payment system is not found", 400)  # UNVERIFIED text
    payments = table(store, "sale_payment")
    payment_id = store.next_id("sale_payment")
    paid = "Y" if str(fields.get("paid") or "N") == "Y" else "N"
    count = sum(1 for p in payments.values() if p["orderId"] == order["id"]) + 1
    payment = {
        "id": payment_id,
        "orderId": order["id"],
        "accountNumber": f"{order['accountNumber']}/{count}",
        "paid": paid,
        "sum": float(fields.get("sum") or order["price"]),
        "currency": order["currency"],
        "paySystemId": system,
        "paySystemName": _PAY_SYSTEMS[system or 1],
        "datePaid": now_iso(store) if paid == "Y" else None,
        "dateBill": now_iso(store),
        "isReturn": "N",
        "comments": str(fields.get("comments") or ""),
    }
    payments[payment_id] = payment
    paid_total = sum(p["sum"] for p in payments.values() if p["orderId"] == order["id"] and p["paid"] == "Y")
    order["payed"] = "Y" if paid_total >= float(order["price"]) > 0 else "N"
    return {"payment": dict(payment)}


_DELIVERIES = [
    {
        "ID": 1,
        "PARENT_ID": None,
        "NAME": "No delivery",
        "ACTIVE": "Y",
        "DESCRIPTION": "",
        "CURRENCY": "USD",
        "SORT": 100,
    },
    {
        "ID": 2,
        "PARENT_ID": None,
        "NAME": "Courier",
        "ACTIVE": "Y",
        "DESCRIPTION": "Courier delivery",
        "CURRENCY": "USD",
        "SORT": 200,
    },
    {
        "ID": 3,
        "PARENT_ID": None,
        "NAME": "Pickup",
        "ACTIVE": "Y",
        "DESCRIPTION": "Pickup point",
        "CURRENCY": "USD",
        "SORT": 300,
    },
]


@method("sale.delivery.getlist", "sale")
def delivery_list(store: Store, params: dict[str, Any], caller: Caller) -> list[dict[str, Any]]:
    """sale/delivery/delivery/sale-delivery-get-list.md: SELECT, FILTER, ORDER (upper-case)."""
    flt = params.get("FILTER") or params.get("filter") or {}
    if not isinstance(flt, dict):
        raise ApiError("ERROR_CHECK_FAILURE", "Parameter FILTER must be an object", 400)
    rows = [dict(d) for d in _DELIVERIES if all(str(d.get(str(k).upper())) == str(v) for k, v in flt.items())]
    select = params.get("SELECT") or params.get("select")
    if isinstance(select, list) and select:
        rows = [{k: v for k, v in r.items() if k in select} for r in rows]
    return rows
