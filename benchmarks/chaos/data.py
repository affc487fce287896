"""What the fault runs work on (shoppers, a store, products with counted stock) and the data
invariants checked after every fault.

Rows are written through the catalog services (listing columns right) straight into the run's
database; shoppers get access tokens signed with the stack's key, and one of them logs in with a
password (the login path needs Redis for its rate limits).
"""

from __future__ import annotations

import contextlib
import io
import json
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

from PIL import Image
from sqlalchemy import String, cast, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from core.adapters.passwords import hash_password_sync
from core.adapters.tokens import TokenSigner
from core.settings import Settings
from db.engine import Database
from db.models import (
    Category,
    Fulfilment,
    IdempotencyKey,
    Notification,
    OrderEvent,
    OutboxMessage,
    Payment,
    PaymentEvent,
    ProductImage,
    User,
    Vendor,
)
from db.services.catalog import products as product_service
from db.services.catalog.listing_refresh import refresh_listing
from db.services.ledger import checks

PASSWORD = "chaos-Runway-2026!"  # noqa: S105  # accounts of a throwaway stack
CATEGORY = "women-tops-t-shirts"
PRICE = 1_500_000
ADDRESS = {"full_name": "Ada Obi", "line1": "1 Marina", "city": "Lagos", "country": "NG"}


@dataclass(frozen=True)
class Shopper:
    user_id: UUID
    email: str
    headers: dict[str, str]


@dataclass
class Catalog:
    """Products of one fault, with the stock each variant started with."""

    vendor_id: UUID
    vendor_headers: dict[str, str]  # the store owner's token
    product_ids: list[UUID]
    variant_ids: list[UUID]
    initial_stock: dict[UUID, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Check:
    """One invariant: what was checked, whether it held, and the evidence."""

    name: str
    ok: bool
    detail: str = ""


async def make_user(session: AsyncSession, password_hash: str, role: str = "client") -> User:
    user = User(
        email=f"{role}-{uuid.uuid4().hex[:12]}@chaos.example.com",
        password_hash=password_hash,
        full_name="Ada Obi",
        role=role,
        is_verified=True,
    )
    session.add(user)
    await session.flush()
    return user


class Seeder:
    """Writes the rows a fault needs; one password hash for every account (Argon2 is slow)."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.signer = TokenSigner(settings)
        self.password_hash = hash_password_sync(PASSWORD)

    async def shoppers(self, count: int) -> list[Shopper]:
        async with self.db.session_maker() as session:
            users = [await make_user(session, self.password_hash) for _ in range(count)]
            await session.commit()
        return [
            Shopper(u.id, u.email, {"Authorization": f"Bearer {self.signer.issue(u.id, u.role)}"})
            for u in users
        ]

    async def catalog(self, products: int, stock: int) -> Catalog:
        """``products`` listed products of a new store, one variant each with ``stock`` units."""
        async with self.db.session_maker() as session:
            owner = await make_user(session, self.password_hash, role="vendor")
            vendor = Vendor(
                owner_id=owner.id, name=f"Chaos {uuid.uuid4().hex[:6]}", slug=f"chaos-{uuid.uuid4().hex}"
            )
            session.add(vendor)
            await session.flush()
            category = await session.scalar(select(Category).where(Category.slug == CATEGORY))
            if category is None:
                raise RuntimeError(f"category {CATEGORY} missing: were migrations applied?")
            token = self.signer.issue(owner.id, owner.role)
            catalog = Catalog(vendor.id, {"Authorization": f"Bearer {token}"}, product_ids=[], variant_ids=[])
            for index in range(products):
                product = await product_service.create_product(
                    session,
                    vendor,
                    currency=self.settings.currency,
                    title=f"Chaos tee {index}",
                    description="A tee that survives outages.",
                    category_id=category.id,
                    brand=None,
                    price=product_service.Money(amount=PRICE, currency=self.settings.currency),
                    attributes=None,
                )
                variant, _ = await product_service.add_variant(
                    session,
                    vendor,
                    product.id,
                    currency=self.settings.currency,
                    sku=f"CH-{product.id.hex[-12:]}",
                    size="M",
                    color="black",
                    price=None,
                    stock=stock,
                )
                product.status = "active"
                await session.flush()
                await refresh_listing(session, product_id=product.id)
                catalog.product_ids.append(product.id)
                catalog.variant_ids.append(variant.id)
                catalog.initial_stock[variant.id] = stock
            await session.commit()
        return catalog


def photo(index: int, size: tuple[int, int] = (480, 640)) -> bytes:
    """A distinct JPEG product photo per ``index`` (stripes of colours drawn from it)."""
    image = Image.new("RGB", size, ((index * 53) % 256, (index * 97) % 256, (index * 31) % 256))
    stripe = ((index * 17) % 256, 255 - (index * 7) % 256, (index * 131) % 256)
    for y in range(0, size[1], 40 + index % 30):
        image.paste(stripe, (0, y, size[0], y + 12))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()


# --- invariants ---------------------------------------------------------------------------------
async def ledger_check(db: Database) -> Check:
    """The ledger's invariants (``just ledger-check``) over everything the stack did so far."""
    async with db.session_maker() as session:
        breaches = await checks.check(session)
    detail = "; ".join(f"{b.invariant}: {b.detail}" for b in breaches[:5])
    return Check("ledger holds (just ledger-check)", not breaches, detail or "every invariant holds")


_STOCK = text(
    """
    SELECT v.id, v.stock, v.reserved,
           COALESCE(SUM(l.quantity) FILTER (WHERE o.status = 'pending_payment'), 0) AS pending,
           COALESCE(SUM(l.quantity) FILTER (
               WHERE o.status IN ('paid', 'partially_shipped', 'shipped', 'delivered')), 0) AS sold
    FROM variants v
    LEFT JOIN order_lines l ON l.variant_id = v.id
    LEFT JOIN orders o ON o.id = l.order_id
    WHERE v.id = ANY(:ids)
    GROUP BY v.id, v.stock, v.reserved
    """
)


async def stock_checks(db: Database, catalog: Catalog) -> list[Check]:
    """stock = initial - sold - reserved, reserved = units of unpaid orders, never below zero."""
    async with db.session_maker() as session:
        rows = (await session.execute(_STOCK, {"ids": list(catalog.initial_stock)})).all()
    wrong_stock, wrong_reserved, negative = [], [], []
    sold_total = pending_total = 0
    for variant_id, stock, reserved, pending, sold in rows:
        initial = catalog.initial_stock[variant_id]
        sold_total += sold
        pending_total += pending
        if stock != initial - sold - pending:
            wrong_stock.append(
                f"{variant_id}: stock {stock}, initial {initial}, sold {sold}, unpaid {pending}"
            )
        if reserved != pending:
            wrong_reserved.append(f"{variant_id}: reserved {reserved}, unpaid units {pending}")
        if stock < 0 or reserved < 0:
            negative.append(str(variant_id))
    return [
        Check(
            "stock = initial - sold - unpaid",
            not wrong_stock and len(rows) == len(catalog.initial_stock),
            "; ".join(wrong_stock[:3]) or f"{len(rows)} variants, {sold_total} units sold",
        ),
        Check(
            "reserved = units of unpaid orders",
            not wrong_reserved,
            "; ".join(wrong_reserved[:3]) or f"{pending_total} units reserved",
        ),
        Check("no negative stock", not negative, ", ".join(negative[:3])),
    ]


async def payment_checks(db: Database, order_ids: Iterable[UUID]) -> list[Check]:
    """One move to paid and one succeeded payment per paid order; every event processed."""
    ids = list(order_ids)
    async with db.session_maker() as session:
        paid_moves = Counter(
            (
                await session.scalars(
                    select(OrderEvent.order_id).where(
                        OrderEvent.order_id.in_(ids), OrderEvent.to_status == "paid"
                    )
                )
            ).all()
        )
        succeeded = Counter(
            (
                await session.scalars(
                    select(Payment.order_id).where(Payment.order_id.in_(ids), Payment.status == "succeeded")
                )
            ).all()
        )
        statuses: dict[UUID, str] = dict(
            (
                await session.execute(
                    text("SELECT id, status FROM orders WHERE id = ANY(:ids)"), {"ids": ids}
                )
            ).all()
        )
        references = list(await session.scalars(select(Payment.reference).where(Payment.order_id.in_(ids))))
        unprocessed = await session.scalar(
            select(func.count())
            .select_from(PaymentEvent)
            .where(
                PaymentEvent.reference.in_(references),
                PaymentEvent.event_type == "charge.success",
                PaymentEvent.processed_at.is_(None),
            )
        )
    paid = [i for i, status in statuses.items() if status in ("paid", "fulfilled", "delivered")]
    twice = [str(i) for i, n in paid_moves.items() if n > 1]
    wrong = [str(i) for i in paid if paid_moves[i] != 1 or succeeded[i] != 1]
    stray = [str(i) for i in ids if i not in paid and (paid_moves[i] or succeeded[i])]
    return [
        Check(
            "paid once (one audit row to paid)", not twice, ", ".join(twice[:3]) or f"{len(paid)} orders paid"
        ),
        Check(
            "one payment per paid order",
            not wrong and not stray,
            ", ".join((wrong + stray)[:3]) or f"{sum(succeeded.values())} succeeded payments",
        ),
        Check("every charge event processed", unprocessed == 0, f"{unprocessed} unprocessed"),
    ]


async def idempotency_checks(db: Database, answers: dict[str, str | None]) -> list[Check]:
    """Each ``Idempotency-Key`` (key -> order id the client was finally given, None when it was
    refused) made exactly that order and no other."""
    async with db.session_maker() as session:
        rows = (
            await session.execute(
                select(IdempotencyKey.key, IdempotencyKey.order_id).where(
                    IdempotencyKey.key.in_(list(answers))
                )
            )
        ).all()
    per_key = Counter(key for key, _ in rows)
    stored = {key: str(order_id) for key, order_id in rows}
    duplicated = [k for k, n in per_key.items() if n > 1]
    mismatched = [k for k, order_id in answers.items() if stored.get(k) != order_id]
    made = sum(1 for v in answers.values() if v is not None)
    return [
        Check(
            "one order per Idempotency-Key", not duplicated, ", ".join(duplicated[:3]) or f"{len(rows)} keys"
        ),
        Check(
            "the client's order is the key's order",
            not mismatched,
            ", ".join(mismatched[:3]) or f"{made} orders for {len(answers)} keys",
        ),
    ]


# --- jobs: accepted (outbox rows) and completed (their effects) -------------------------------------
@dataclass
class JobTally:
    accepted: int = 0
    completed: int = 0
    undispatched: int = 0
    missing: list[str] = field(default_factory=list)
    by_task: dict[str, list[int]] = field(default_factory=dict)  # task -> [accepted, completed]


def log_records(paths: Iterable[Path], event: str) -> list[dict[str, Any]]:
    """JSON log lines of ``event`` in the given log files."""
    needle = f'"event":"{event}"'
    found = []
    for path in paths:
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            if needle in line:
                with contextlib.suppress(json.JSONDecodeError):
                    found.append(json.loads(line))
    return found


# What each kind of durable job leaves behind once it has run, from its arguments.
EFFECTS = {
    "emails.orders.send_confirmation": "mail:order-{0}-confirmation",
    # The fan-out's own effect is the jobs it defers; its confirmation mail stands for them.
    "emails.orders.fan_out_placed": "mail:order-{0}-confirmation",
    "emails.orders.send_status_update": "mail:order-{0}-status-{1}",
    "emails.notifications.order_update": "notice:order:{0}:{1}",
    "analytics.orders.record_event": "event:order:{0}:{1}",
    "critical.payments.process_event": "processed:{0}",
    "critical.payments.refund": "refunded:{0}",
    "inference.catalog.embed_image": "embedded:{0}",
    "critical.catalog.process_image": "thumbnails:{0}",
    "emails.notifications.vendor_sale": "vendor_sale:{0}",
    "emails.notifications.fulfilment_update": "notice:fulfilment:{0}:{1}:{2}",
    "emails.fulfilment.send_shipped": "mail:fulfilment-{0}-shipped",
    "emails.notifications.refund_sent": "notice:refund:{0}",
}


def effect_of(task_name: str, args: list[str]) -> str | None:
    """The effect of a job (None: a job this run does not know)."""
    template = EFFECTS.get(task_name)
    try:
        return template.format(*args) if template else None
    except IndexError:
        return None


class Effects:
    """Whether each kind of durable job has had its effect, looked up in bulk."""

    def __init__(self, db: Database, mail_dir: Path, log_dir: Path) -> None:
        self.db = db
        self.mail_dir = mail_dir
        self.log_dir = log_dir

    def mail_keys(self) -> set[str]:
        return {path.stem for path in self.mail_dir.glob("*.eml")} if self.mail_dir.exists() else set()

    def analytics(self) -> list[dict[str, Any]]:
        return log_records(self.log_dir.glob("worker-analytics*.log"), "analytics event")

    def mail_sends(self) -> list[dict[str, Any]]:
        return log_records(self.log_dir.glob("worker-emails*.log"), "order mail sent")

    async def done(self) -> set[str]:
        """Every effect that has happened, as :func:`effect_of` names them."""
        async with self.db.session_maker() as session:
            notices = await session.scalars(select(Notification.dedupe_key))
            processed = await session.scalars(
                select(PaymentEvent.id).where(PaymentEvent.processed_at.is_not(None))
            )
            refunded = await session.scalars(select(Payment.id).where(Payment.status == "refunded"))
            embedded = await session.scalars(
                select(ProductImage.id).where(ProductImage.embedding_status.in_(("ready", "failed")))
            )
            thumbs = await session.scalars(select(ProductImage.id).where(ProductImage.status == "ready"))
            # A paid order's vendors were told once every live part of it has its vendor notice.
            sold_notice = Notification.dedupe_key == func.concat(
                "fulfilment:", cast(Fulfilment.id, String), ":sold"
            )
            told = await session.scalars(
                select(Fulfilment.order_id)
                .outerjoin(Notification, sold_notice)
                .where(Fulfilment.status != "cancelled")
                .group_by(Fulfilment.order_id)
                .having(func.bool_and(Notification.id.is_not(None)))
            )
            done = {f"notice:{k}" for k in notices} | {f"vendor_sale:{i}" for i in told}
            done |= {f"processed:{i}" for i in processed} | {f"refunded:{i}" for i in refunded}
            done |= {f"embedded:{i}" for i in embedded} | {f"thumbnails:{i}" for i in thumbs}
        done |= {f"mail:{k}" for k in self.mail_keys()}
        return done | {f"event:{r.get('event_key')}" for r in self.analytics()}

    async def tally(self, since_id: UUID) -> JobTally:
        """The outbox rows written after ``since_id`` (uuid7 ids grow with time) and their effects."""
        async with self.db.session_maker() as session:
            rows = (await session.scalars(select(OutboxMessage).where(OutboxMessage.id > since_id))).all()
        done = await self.done()
        tally = JobTally()
        for row in rows:
            args = [str(a) for a in row.args]
            effect = effect_of(row.task_name, args)
            counts = tally.by_task.setdefault(row.task_name, [0, 0])
            tally.accepted += 1
            counts[0] += 1
            if row.dispatched_at is None:
                tally.undispatched += 1
            if effect is not None and effect in done:
                tally.completed += 1
                counts[1] += 1
            else:
                tally.missing.append(
                    f"{row.task_name}{tuple(args)}" if effect else f"{row.task_name}: effect unknown"
                )
        return tally

    def duplicate_checks(self, order_ids: Iterable[UUID]) -> list[Check]:
        """The order mails were each sent once (the worker's record stops a second send), and
        every analytics line of one event says the same (the pipeline drops repeats by key)."""
        wanted = {str(i) for i in order_ids}
        sends = Counter(
            (r.get("order_id"), r.get("kind")) for r in self.mail_sends() if r.get("order_id") in wanted
        )
        twice = [f"{o}:{k} x{n}" for (o, k), n in sends.items() if n > 1]
        lines: dict[str, set[str]] = {}
        repeats = 0
        for record in self.analytics():
            if record.get("order_id") not in wanted:
                continue
            key = str(record.get("event_key"))
            body = json.dumps(
                {k: v for k, v in record.items() if k not in ("timestamp", "request_id")}, sort_keys=True
            )
            repeats += key in lines
            lines.setdefault(key, set()).add(body)
        differing = [k for k, bodies in lines.items() if len(bodies) > 1]
        return [
            Check(
                "no mail sent twice",
                not twice,
                ", ".join(twice[:3]) or f"{sum(sends.values())} 'order mail sent' records, none repeated",
            ),
            Check(
                "analytics repeats identical (deduplicated by event_key)",
                not differing,
                ", ".join(differing[:3]) or f"{len(lines)} events, {repeats} repeated lines",
            ),
        ]


async def notification_checks(db: Database, order_ids: Iterable[UUID]) -> list[Check]:
    prefixes = [f"order:{i}:" for i in order_ids]
    async with db.session_maker() as session:
        keys = [
            k
            for k in await session.scalars(select(Notification.dedupe_key))
            if any(k.startswith(p) for p in prefixes)
        ]
    twice = [k for k, n in Counter(keys).items() if n > 1]
    return [Check("one notice per order and kind", not twice, ", ".join(twice[:3]) or f"{len(keys)} notices")]


def job_checks(tally: JobTally) -> list[Check]:
    return [
        Check(
            "every accepted job dispatched",
            tally.undispatched == 0,
            f"{tally.undispatched} of {tally.accepted} outbox rows never sent",
        ),
        Check(
            "every accepted job done",
            tally.completed == tally.accepted,
            "; ".join(tally.missing[:3]) or f"{tally.completed}/{tally.accepted}",
        ),
    ]
