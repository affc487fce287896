"""The access policy of every route of the API, as the tests hold the app to it.

Each route the app serves, as ``(method, path)`` exactly as Litestar lists it, has a
:class:`Rule`: who may call it and, for routes that take an object id, how objects are scoped.
``tests/test_access_policy.py`` fails when the app has a route this table does not name (or the
table names one the app no longer has), so a new route cannot ship without a decided policy.

Access:
- ``public``: anyone, without a token;
- ``user``: any logged-in user (client, vendor or staff);
- ``vendor`` / ``staff``: that role only (others 403, no token 401);
- ``signed``: no token matters; the request must carry the payment provider's signature.

Objects (routes with an id in their path):
- ``owner``: the id names an object of the caller (their order, cart item, measurement, session,
  notification; a vendor's product, variant, order lines, voucher): anyone else's is 404, exactly
  as a missing one;
- ``hidden``: a public object that may be unlisted (a draft product, a suspended store): unlisted
  ones are 404 to everyone but their vendor, exactly as a missing one;
- ``any``: staff act on every object; public names (file paths, schema pages) are not objects.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from litestar import Litestar
from litestar.handlers import HTTPRouteHandler

Access = Literal["public", "user", "vendor", "staff", "signed"]
Objects = Literal["owner", "hidden", "any"]
Route = tuple[str, str]

API = "/api/v1"
ID = "{product_id:uuid}"


@dataclass(frozen=True)
class Rule:
    access: Access
    objects: Objects | None = None
    # A body that passes validation, for the routes whose role check happens in the service (so a
    # probe reaches it); other routes are refused by their guards before the body is read.
    probe_body: dict[str, Any] | None = None


def _api(method: str, path: str) -> Route:
    return (method, API + path)


POLICY: dict[Route, Rule] = {
    # Operations and documentation.
    ("GET", "/health/live"): Rule("public"),
    ("GET", "/health/ready"): Rule("public"),
    ("GET", "/metrics"): Rule("public"),
    ("GET", "/schema"): Rule("public"),
    ("GET", "/schema/scalar"): Rule("public"),
    ("GET", "/schema/openapi.json"): Rule("public"),
    ("GET", "/schema/{path:str}"): Rule("public", "any"),
    ("GET", "/media/{file_path:path}"): Rule("public", "any"),
    ("HEAD", "/media/{file_path:path}"): Rule("public", "any"),
    # Identity.
    _api("POST", "/auth/register"): Rule("public"),
    _api("POST", "/auth/otp/verify"): Rule("public"),
    _api("POST", "/auth/otp/resend"): Rule("public"),
    _api("POST", "/auth/login"): Rule("public"),
    _api("POST", "/auth/refresh"): Rule("public"),
    _api("POST", "/auth/logout"): Rule("public"),
    _api("POST", "/auth/logout/all"): Rule("public"),
    _api("POST", "/auth/password/forgot"): Rule("public"),
    _api("POST", "/auth/password/reset"): Rule("public"),
    _api("GET", "/me"): Rule("user"),
    _api("PATCH", "/me"): Rule("user"),
    _api("GET", "/me/sessions"): Rule("user"),
    _api("DELETE", "/me/sessions/{session_id:uuid}"): Rule("user", "owner"),
    _api("GET", "/me/notifications"): Rule("user"),
    _api("POST", "/me/notifications/read-all"): Rule("user"),
    _api("POST", "/me/notifications/{notification_id:uuid}/read"): Rule("user", "owner"),
    # Staff.
    _api("GET", "/staff/users"): Rule("staff"),
    _api("PATCH", "/staff/users/{user_id:uuid}/role"): Rule("staff", "any"),
    _api("PATCH", "/staff/users/{user_id:uuid}/status"): Rule("staff", "any"),
    _api("PATCH", "/staff/vendors/{vendor_id:uuid}/status"): Rule("staff", "any"),
    _api("POST", "/staff/orders/{order_id:uuid}/status"): Rule("staff", "any"),
    _api("GET", "/staff/orders"): Rule("staff"),
    _api("GET", "/staff/orders/{order_id:uuid}"): Rule("staff", "any"),
    _api("GET", "/staff/audit-events"): Rule("staff"),
    _api("GET", "/staff/jobs/dead-letters"): Rule("staff"),
    _api("POST", "/staff/jobs/dead-letters/{dead_letter_id:str}/replay"): Rule("staff", "any"),
    _api("DELETE", "/staff/jobs/dead-letters/{dead_letter_id:str}"): Rule("staff", "any"),
    _api("GET", "/staff/fulfilments"): Rule("staff"),
    _api("GET", "/staff/reports/revenue"): Rule("staff"),
    _api("POST", "/staff/fulfilments/{fulfilment_id:uuid}/pack"): Rule("staff", "any"),
    _api("POST", "/staff/fulfilments/{fulfilment_id:uuid}/ship"): Rule("staff", "any"),
    _api("POST", "/staff/fulfilments/{fulfilment_id:uuid}/deliver"): Rule("staff", "any"),
    _api("POST", "/staff/fulfilments/{fulfilment_id:uuid}/cancel"): Rule("staff", "any"),
    _api("GET", "/staff/payouts"): Rule("staff"),
    _api("POST", "/staff/vendors/{vendor_id:uuid}/payouts/hold"): Rule("staff", "any"),
    _api("POST", "/staff/vendors/{vendor_id:uuid}/payouts/release"): Rule("staff", "any"),
    _api("GET", "/staff/vouchers"): Rule("staff"),
    _api("POST", "/staff/vouchers"): Rule("staff"),
    _api("PATCH", "/staff/vouchers/{voucher_id:uuid}"): Rule("staff", "any"),
    # Catalog.
    _api("GET", "/categories"): Rule("public"),
    _api("GET", "/brands"): Rule("public"),
    _api("GET", "/products"): Rule("public"),
    _api("GET", f"/products/{ID}"): Rule("public", "hidden"),
    _api("GET", f"/products/{ID}/similar"): Rule("public", "hidden"),
    _api("POST", "/search/image"): Rule("public"),
    _api("GET", "/vendors/{vendor_id:uuid}"): Rule("public", "hidden"),
    # Opening a store: the guard asks for a login, the service for the vendor role.
    _api("POST", "/vendors"): Rule("vendor", probe_body={"name": "Probe store"}),
    # A vendor's own store.
    _api("GET", "/vendor/products"): Rule("vendor"),
    _api("POST", "/vendor/products"): Rule("vendor"),
    _api("GET", f"/vendor/products/{ID}"): Rule("vendor", "owner"),
    _api("PATCH", f"/vendor/products/{ID}"): Rule("vendor", "owner"),
    _api("POST", f"/vendor/products/{ID}/variants"): Rule("vendor", "owner"),
    _api("PUT", f"/vendor/products/{ID}/size-chart"): Rule("vendor", "owner"),
    _api("POST", f"/vendor/products/{ID}/images"): Rule("vendor", "owner"),
    _api("PATCH", "/vendor/variants/{variant_id:uuid}"): Rule("vendor", "owner"),
    _api("GET", "/vendor/orders"): Rule("vendor"),
    _api("GET", "/vendor/orders/{order_id:uuid}"): Rule("vendor", "owner"),
    _api("GET", "/vendor/stats"): Rule("vendor"),
    _api("GET", "/vendor/shipping-profile"): Rule("vendor"),
    _api("PUT", "/vendor/shipping-profile"): Rule("vendor"),
    _api("GET", "/vendor/fulfilments"): Rule("vendor"),
    _api("GET", "/vendor/returns"): Rule("vendor"),
    _api("GET", "/vendor/statement"): Rule("vendor"),
    _api("POST", "/vendor/returns/{return_id:uuid}/approve"): Rule("vendor", "owner"),
    _api("POST", "/vendor/returns/{return_id:uuid}/reject"): Rule("vendor", "owner"),
    _api("POST", "/vendor/returns/{return_id:uuid}/receive"): Rule("vendor", "owner"),
    _api("GET", "/vendor/fulfilments/{fulfilment_id:uuid}"): Rule("vendor", "owner"),
    _api("POST", "/vendor/fulfilments/{fulfilment_id:uuid}/pack"): Rule("vendor", "owner"),
    _api("POST", "/vendor/fulfilments/{fulfilment_id:uuid}/ship"): Rule("vendor", "owner"),
    _api("POST", "/vendor/fulfilments/{fulfilment_id:uuid}/deliver"): Rule("vendor", "owner"),
    _api("POST", "/vendor/fulfilments/{fulfilment_id:uuid}/cancel"): Rule("vendor", "owner"),
    _api("GET", "/vendor/balance"): Rule("vendor"),
    _api("GET", "/vendor/payout-account"): Rule("vendor"),
    _api("PUT", "/vendor/payout-account"): Rule("vendor"),
    _api("GET", "/vendor/payouts"): Rule("vendor"),
    _api("POST", "/vendor/payouts"): Rule("vendor"),
    _api("GET", "/vendor/vouchers"): Rule("vendor"),
    _api("POST", "/vendor/vouchers"): Rule("vendor"),
    _api("PATCH", "/vendor/vouchers/{voucher_id:uuid}"): Rule("vendor", "owner"),
    # Fit and measurements.
    _api("GET", f"/products/{ID}/fit"): Rule("user", "hidden"),
    _api("GET", "/fit/products"): Rule("user"),
    _api("POST", "/measurements"): Rule("user"),
    _api("GET", "/measurements/{measurement_id:uuid}"): Rule("user", "owner"),
    _api("GET", "/measurements/{measurement_id:uuid}/events"): Rule("user", "owner"),
    _api("GET", "/me/body-profile"): Rule("user"),
    # Cart, orders, payments.
    _api("GET", "/cart"): Rule("user"),
    _api("GET", "/cart/shipping-options"): Rule("user"),
    _api("POST", "/cart/items"): Rule("user"),
    _api("PATCH", "/cart/items/{item_id:uuid}"): Rule("user", "owner"),
    _api("DELETE", "/cart/items/{item_id:uuid}"): Rule("user", "owner"),
    _api("POST", "/cart/voucher"): Rule("user"),
    _api("DELETE", "/cart/voucher"): Rule("user"),
    _api("GET", "/orders"): Rule("user"),
    _api("POST", "/orders"): Rule("user"),
    _api("GET", "/orders/{order_id:uuid}"): Rule("user", "owner"),
    _api("POST", "/orders/{order_id:uuid}/cancel"): Rule("user", "owner"),
    _api("POST", "/orders/{order_id:uuid}/payments"): Rule("user", "owner"),
    _api("GET", "/orders/{order_id:uuid}/returns"): Rule("user", "owner"),
    _api("POST", "/orders/{order_id:uuid}/returns"): Rule("user", "owner"),
    _api("POST", "/webhooks/paystack"): Rule("signed"),
    # Development only (PAYMENT_PROVIDER=sandbox): stands in for the provider's public checkout page.
    _api("GET", "/sandbox/paystack/checkout/{reference:str}"): Rule("public", "any"),
    # Reviews and wishlist: the product id is public; what the caller changes is their own row.
    _api("GET", f"/products/{ID}/reviews"): Rule("public", "hidden"),
    _api("POST", f"/products/{ID}/reviews"): Rule("user", "hidden"),
    _api("DELETE", f"/products/{ID}/reviews/mine"): Rule("user", "owner"),
    _api("GET", "/me/wishlist"): Rule("user"),
    _api("PUT", f"/me/wishlist/{ID}"): Rule("user", "hidden"),
    _api("DELETE", f"/me/wishlist/{ID}"): Rule("user", "owner"),
}


@dataclass(frozen=True)
class ServedRoute:
    method: str
    path: str
    handler: HTTPRouteHandler

    @property
    def key(self) -> Route:
        return (self.method, self.path)


def served_routes(app: Litestar) -> list[ServedRoute]:
    """Every (method, path) the app answers, except the OPTIONS handlers Litestar adds itself."""
    found = []
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if not isinstance(handler, HTTPRouteHandler):
                continue
            for method in sorted(handler.http_methods):
                if method == "OPTIONS" and handler.handler_name == "options_handler":
                    continue
                found.append(ServedRoute(method, route.path, handler))
    return found


def concrete_path(template: str, values: dict[str, str] | None = None) -> str:
    """``template`` with its parameters filled from ``values`` (else a fresh UUID or a word)."""
    values = values or {}

    def fill(match: re.Match[str]) -> str:
        name, kind = match.group(1), match.group(2)
        if name in values:
            return values[name]
        return str(uuid.uuid4()) if kind == "uuid" else "probe"

    return re.sub(r"\{(\w+):(\w+)\}", fill, template)
