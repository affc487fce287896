"""A vendor's statement (JSON pages and CSV) and the staff revenue report, read from the ledger."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from core.settings import Settings
from db.models import User, Vendor
from tests.support.http import problem
from tests.support.identity import make_user
from tests.test_cart_orders import auth
from tests.test_ledger import paid_order

pytestmark = pytest.mark.anyio

API = "/api/v1"


async def owner_of(session: AsyncSession, vendor_id: object) -> User:
    vendor = await session.get(Vendor, vendor_id)
    assert vendor is not None
    user = await session.get(User, vendor.owner_id)
    assert user is not None
    return user


async def test_a_vendor_reads_its_own_statement_in_pages_and_as_csv(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    order, _, (first, second) = await paid_order(session)
    owner = await owner_of(session, first.vendor_id)
    headers = auth(settings, owner)
    page = await client.get(f"{API}/vendor/statement", headers=headers, params={"limit": 1})
    assert page.status_code == 200, page.text
    body = page.json()
    [line] = body["items"]
    assert (line["kind"], line["account"], line["order_id"]) == ("payment_captured", "pending", str(order.id))
    assert line["amount"] == {"amount": 4_000_000 - 400_000, "currency": "NGN"}
    assert line["fulfilment_id"] == str(first.id)
    # The other store's earnings never show.
    assert body["next_cursor"] is None
    exported = await client.get(f"{API}/vendor/statement", headers={**headers, "Accept": "text/csv"})
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(r["kind"], r["amount"], r["fulfilment_id"]) for r in rows] == [
        ("payment_captured", "3600000", str(first.id))
    ]
    today = datetime.now(UTC).date()
    empty = await client.get(
        f"{API}/vendor/statement", headers=headers, params={"to": str(today - timedelta(days=1))}
    )
    assert empty.json()["items"] == []
    for params in (
        {"from": "2025-13-01"},
        {"from": str(today), "to": str(today - timedelta(days=2))},
        {"cursor": "x"},
    ):
        problem(await client.get(f"{API}/vendor/statement", headers=headers, params=params), 422)
    problem(
        await client.get(f"{API}/vendor/statement", headers=auth(settings, await make_user(session))), 403
    )
    other = await owner_of(session, second.vendor_id)
    theirs = (await client.get(f"{API}/vendor/statement", headers=auth(settings, other))).json()["items"]
    assert [item["fulfilment_id"] for item in theirs] == [str(second.id)]


async def test_the_revenue_report_by_day_vendor_and_category(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    _, _, (first, second) = await paid_order(session)
    staff = auth(settings, await make_user(session, role="staff"))
    by_day = (await client.get(f"{API}/staff/reports/revenue", headers=staff)).json()
    assert by_day["group_by"] == "day"
    assert by_day["total"]["commission"] == {"amount": 500_000, "currency": "NGN"}
    assert by_day["total"]["provider_fees"] == {"amount": 75_000, "currency": "NGN"}
    by_vendor = (
        await client.get(f"{API}/staff/reports/revenue", headers=staff, params={"group_by": "vendor"})
    ).json()
    commission = {row["key"]: row["commission"]["amount"] for row in by_vendor["rows"]}
    assert commission == {str(first.vendor_id): 400_000, str(second.vendor_id): 100_000}
    fees = {row["key"]: row["provider_fees"]["amount"] for row in by_vendor["rows"]}
    assert fees == {str(first.vendor_id): 60_000, str(second.vendor_id): 15_000}  # shared 4:1
    by_category = (
        await client.get(f"{API}/staff/reports/revenue", headers=staff, params={"group_by": "category"})
    ).json()
    assert sum(row["commission"]["amount"] for row in by_category["rows"]) == 500_000
    problem(
        await client.get(f"{API}/staff/reports/revenue", headers=staff, params={"group_by": "brand"}), 422
    )
    problem(
        await client.get(f"{API}/staff/reports/revenue", headers=staff, params={"from": "2024-01-01"}), 422
    )
    vendor = await owner_of(session, first.vendor_id)
    problem(await client.get(f"{API}/staff/reports/revenue", headers=auth(settings, vendor)), 403)
