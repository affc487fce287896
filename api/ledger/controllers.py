"""Money reports: a vendor's statement (JSON pages or a CSV export) and the staff revenue report."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromQuery, QueryParameter
from litestar.response import Stream
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import requires_role
from api.common import Cursor, Limit, SignedMoney, money
from api.ledger import schemas
from api.resources import AppResources
from api.seller.controllers import provide_store
from db.models import Vendor
from db.services.ledger import revenue, statements
from db.services.vendor_sales.stats import parse_day, resolve_range

Day = Annotated[str | None, QueryParameter(description="YYYY-MM-DD, inclusive, UTC")]
FromDay = Annotated[str | None, QueryParameter(name="from", description="YYYY-MM-DD, inclusive, UTC")]
CSV_COLUMNS = (
    "at",
    "kind",
    "description",
    "account",
    "amount",
    "currency",
    "order_id",
    "fulfilment_id",
    "payout_id",
)


def _line_out(line: statements.StatementLine) -> schemas.StatementLine:
    return schemas.StatementLine(
        id=line.id,
        at=line.occurred_at,
        kind=line.kind,
        description=line.description,
        account=line.account,  # type: ignore[arg-type]  # "pending" or "available" by construction
        amount=SignedMoney(amount=line.amount, currency=line.currency),
        order_id=line.order_id,
        fulfilment_id=line.fulfilment_id,
        payout_id=line.payout_id,
    )


async def _csv(rows: AsyncIterator[statements.StatementLine]) -> AsyncIterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    async for line in rows:
        writer.writerow(
            [
                line.occurred_at.isoformat(),
                line.kind,
                line.description,
                line.account,
                line.amount,
                line.currency,
                line.order_id or "",
                line.fulfilment_id or "",
                line.payout_id or "",
            ]
        )
        if buffer.tell() > 64_000:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


class VendorStatementController(Controller):
    path = "/vendor/statement"
    tags = ["vendor", "money"]
    guards = [requires_role("vendor")]
    dependencies = {"store": Provide(provide_store)}

    @get(
        "/",
        summary="Your statement: every movement of your earnings, newest first",
        description="Keyset pages (`limit`, `cursor`); `from`/`to` are days (UTC, inclusive). With "
        "`Accept: text/csv` the whole range is exported as CSV, oldest first.",
    )
    async def statement(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        store: NamedDependency[Vendor],
        start: FromDay = None,
        to: Day = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Response[schemas.Statement] | Stream:
        first, last = parse_day(start, "from"), parse_day(to, "to")
        if "text/csv" in request.headers.get("accept", ""):
            statements.check_range(first, last)
            rows = statements.statement_rows(db_session, store.id, start=first, end=last)
            name = f"statement-{store.slug}-{first or 'start'}-{last or 'now'}.csv"
            return Stream(
                _csv(rows),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="{name}"'},
            )
        page = await statements.statement_page(
            db_session, store.id, start=first, end=last, limit=limit, cursor=cursor
        )
        return Response(
            schemas.Statement(items=[_line_out(x) for x in page.items], next_cursor=page.next_cursor)
        )


class RevenueReportController(Controller):
    path = "/staff/reports/revenue"
    tags = ["staff", "money"]
    guards = [requires_role("staff")]

    @get(
        "/",
        summary="Platform revenue: commission, provider fees and promotions",
        description="By `day`, `vendor` or `category` over `from`/`to` (days, UTC, inclusive; the last "
        "30 days by default, at most 366).",
    )
    async def revenue(
        self,
        db_session: NamedDependency[AsyncSession],
        resources: NamedDependency[AppResources],
        start: FromDay = None,
        to: Day = None,
        group_by: FromQuery[Literal["day", "vendor", "category"]] = "day",
    ) -> schemas.RevenueReport:
        today = datetime.now(UTC).date()
        first, last = resolve_range(parse_day(start, "from"), parse_day(to, "to"), today=today)
        currency = resources.settings.currency
        rows = await revenue.revenue(db_session, currency=currency, start=first, end=last, group_by=group_by)
        return schemas.RevenueReport(
            group_by=group_by,
            start=first.isoformat(),
            end=last.isoformat(),
            rows=[_row_out(r, currency) for r in rows],
            total=_row_out(
                revenue.RevenueRow(
                    "total",
                    "Total",
                    sum(r.commission for r in rows),
                    sum(r.provider_fees for r in rows),
                    sum(r.promotions for r in rows),
                ),
                currency,
            ),
        )


def _row_out(row: revenue.RevenueRow, currency: str) -> schemas.RevenueRow:
    return schemas.RevenueRow(
        key=row.key,
        label=row.label,
        commission=money(max(row.commission, 0), currency),
        provider_fees=money(max(row.provider_fees, 0), currency),
        promotions=money(max(row.promotions, 0), currency),
    )
