"""Payment provider webhooks, and the development sandbox's checkout page."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import PathParameter, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from api.orders import schemas
from api.resources import AppResources
from core.adapters.payments import sign
from core.adapters.payments.sandbox import charge_success_event
from db.services.payments.webhooks import receive

WEBHOOK_PATH = "/api/v1/webhooks/paystack"


class WebhooksController(Controller):
    path = "/webhooks"
    tags = ["payments"]

    @post(
        "/paystack",
        status_code=200,
        summary="Paystack events (x-paystack-signature: hex HMAC-SHA512 of the raw body)",
        description="401 without a valid signature (nothing stored). Each event is stored once; a "
        "replay answers 200 and changes nothing. `charge.success` is applied on the critical queue.",
    )
    async def paystack(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        resources: NamedDependency[AppResources],
    ) -> schemas.WebhookAck:
        raw = await request.body()
        outcome = await receive(
            db_session,
            provider=resources.payments.name,
            raw=raw,
            signature=request.headers.get("x-paystack-signature"),
            secret=resources.settings.paystack_secret_key.reveal(),
        )
        return schemas.WebhookAck(status=outcome)


class SandboxCheckoutController(Controller):
    """Development only (PAYMENT_PROVIDER=sandbox): stands in for Paystack's checkout page."""

    path = "/sandbox/paystack"
    tags = ["payments"]
    include_in_schema = False

    @get("/checkout/{reference:str}", summary="Pay in the sandbox: delivers a signed charge.success webhook")
    async def checkout(
        self,
        reference: Annotated[str, PathParameter(max_length=100)],
        amount: Annotated[int, QueryParameter(ge=0, le=10**12)],
        currency: Annotated[str, QueryParameter(pattern=r"^[A-Z]{3}$")],
        email: Annotated[str, QueryParameter(max_length=320)],
        request: Request[Any, Any, Any],
        resources: NamedDependency[AppResources],
    ) -> schemas.SandboxCheckout:
        body = charge_success_event(reference, amount, currency, email)
        signature = sign(body, resources.settings.paystack_secret_key.reveal())
        # Delivered through this app's own ASGI stack, exactly as a provider's POST arrives
        # (signature check, storage, queueing), without needing a public address.
        transport = httpx.ASGITransport(app=request.app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(
            transport=transport, base_url=resources.settings.public_api_base_url
        ) as client:
            response = await client.post(
                WEBHOOK_PATH,
                content=body,
                headers={"x-paystack-signature": signature, "content-type": "application/json"},
            )
        return schemas.SandboxCheckout(reference=reference, webhook_status=response.status_code)
