"""The statements of order creation as the API sends them (``floor_orders.py`` says how they were
captured), written out as text with ``$n`` parameters; ``{ids}``-style slots take an IN list
(``floor_base.in_clause``), rendered as SQLAlchemy renders one of that many values."""

from __future__ import annotations

from db.services.ledger.commission import _ANCESTORS

TRY_LOCK_SQL = "SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))"
KEY_SQL = (
    "SELECT idempotency_keys.id, idempotency_keys.user_id, idempotency_keys.key, "
    "idempotency_keys.request_hash, "
    "idempotency_keys.order_id, idempotency_keys.response_status, idempotency_keys.response_body, "
    "idempotency_keys.expires_at, idempotency_keys.sa_orm_sentinel, idempotency_keys.created_at, "
    "idempotency_keys.updated_at \nFROM idempotency_keys \n"
    "WHERE idempotency_keys.user_id = $1::UUID AND idempotency_keys.key = $2::VARCHAR"
)
VARIANTS_SQL = (
    "SELECT variants.id, variants.product_id, variants.sku, variants.size, variants.color, "
    "variants.price_amount, "
    "variants.stock, variants.reserved, variants.sa_orm_sentinel, variants.created_at, variants.updated_at, "
    "products.id AS id_1, products.vendor_id, products.category_id, products.brand_id, products.title, "
    "products.slug, products.description, products.status, products.currency, "
    "products.price_amount AS price_amount_1, products.attributes, products.final_sale, products.min_price, "
    "products.in_stock, products.sizes, products.colors, products.is_listed, products.search_vector, "
    "products.thumbnail_key, products.rating_count, products.rating_sum, "
    "products.sa_orm_sentinel AS sa_orm_sentinel_1, products.created_at AS created_at_1, "
    "products.updated_at AS updated_at_1, vendors.id AS id_2, vendors.owner_id, vendors.name, "
    "vendors.slug AS slug_1, vendors.description AS description_1, vendors.status AS status_1, "
    "vendors.return_window_days, vendors.payouts_on_hold, vendors.payouts_hold_reason, "
    "vendors.payouts_held_at, "
    "vendors.sa_orm_sentinel AS sa_orm_sentinel_2, vendors.created_at AS created_at_2, "
    "vendors.updated_at AS updated_at_2 \nFROM variants JOIN products ON products.id = variants.product_id "
    "JOIN vendors ON vendors.id = products.vendor_id \nWHERE variants.id IN ({ids})"
)
ANCESTORS_SQL = str(_ANCESTORS).replace("CAST(:ids AS uuid[])", "CAST($1 AS uuid[])")
RULES_SQL = (
    "SELECT commission_rules.vendor_id, commission_rules.category_id, commission_rules.rate_bps \n"
    "FROM commission_rules \nWHERE commission_rules.effective_from <= $1::TIMESTAMP WITH TIME ZONE "
    "AND (commission_rules.effective_to IS NULL OR commission_rules.effective_to > $2::TIMESTAMP "
    "WITH TIME ZONE) "
    "AND (commission_rules.vendor_id IN ({vendors}) OR commission_rules.category_id IN ({categories})) "
    "ORDER BY commission_rules.effective_from"
)
METHODS_SQL = (
    "SELECT shipping_methods.id, shipping_methods.vendor_id, shipping_methods.name, shipping_methods.kind, "
    "shipping_methods.zones, shipping_methods.currency, shipping_methods.price_amount, "
    "shipping_methods.per_extra_item_amount, shipping_methods.free_above_amount, shipping_methods.min_days, "
    "shipping_methods.max_days, shipping_methods.position, shipping_methods.archived_at, "
    "shipping_methods.sa_orm_sentinel, shipping_methods.created_at, shipping_methods.updated_at \n"
    "FROM shipping_methods \nWHERE shipping_methods.vendor_id IN ({ids}) AND "
    "shipping_methods.archived_at IS NULL "
    "ORDER BY shipping_methods.vendor_id, shipping_methods.position, shipping_methods.id"
)
RESERVE_SQL = (
    "UPDATE variants SET stock = stock - $1, reserved = reserved + $1, updated_at = now() "
    "WHERE id = $2 AND stock >= $1 RETURNING product_id"
)
REFRESH_IN_STOCK_SQL = """
    UPDATE products AS p SET in_stock = s.in_stock, updated_at = now()
    FROM (
        SELECT pid AS id,
               EXISTS (SELECT 1 FROM variants v WHERE v.product_id = pid AND v.stock > 0) AS in_stock
        FROM unnest(CAST($1 AS uuid[])) AS pid
    ) AS s
    WHERE p.id = s.id AND p.in_stock IS DISTINCT FROM s.in_stock
    """
INSERT_ORDER_SQL = (
    "INSERT INTO orders (id, user_id, status, currency, subtotal_amount, shipping_amount, discount_amount, "
    "voucher_id, total_amount, item_count, shipping_address, expires_at, paid_at, closed_at, created_at, "
    "updated_at) VALUES ($1::UUID, $2::UUID, $3::VARCHAR, $4::VARCHAR, $5::BIGINT, $6::BIGINT, $7::BIGINT, "
    "$8::UUID, $9::BIGINT, $10::INTEGER, $11::JSONB, $12::TIMESTAMP WITH TIME ZONE, "
    "$13::TIMESTAMP WITH TIME ZONE, $14::TIMESTAMP WITH TIME ZONE, $15::TIMESTAMP WITH TIME ZONE, "
    "$16::TIMESTAMP WITH TIME ZONE)"
)
INSERT_FULFILMENT_SQL = (
    "INSERT INTO fulfilments (id, order_id, vendor_id, status, currency, shipping_method, shipping_amount, "
    "return_window_days, carrier, tracking_number, tracking_url, packed_at, shipped_at, delivered_at, "
    "cancelled_at, cancel_reason, created_at, updated_at) VALUES ($1::UUID, $2::UUID, $3::UUID, $4::VARCHAR, "
    "$5::VARCHAR, $6::JSONB, $7::BIGINT, $8::INTEGER, $9::VARCHAR, $10::VARCHAR, $11::VARCHAR, "
    "$12::TIMESTAMP WITH TIME ZONE, $13::TIMESTAMP WITH TIME ZONE, $14::TIMESTAMP WITH TIME ZONE, "
    "$15::TIMESTAMP WITH TIME ZONE, $16::VARCHAR, $17::TIMESTAMP WITH TIME ZONE, $18::TIMESTAMP "
    "WITH TIME ZONE)"
)
INSERT_EVENT_SQL = (
    "INSERT INTO order_events (id, order_id, fulfilment_id, from_status, to_status, actor, actor_id, reason, "
    "request_id, created_at, updated_at) VALUES ($1::UUID, $2::UUID, $3::UUID, $4::VARCHAR, $5::VARCHAR, "
    "$6::VARCHAR, $7::UUID, $8::VARCHAR, $9::VARCHAR, $10::TIMESTAMP WITH TIME ZONE, "
    "$11::TIMESTAMP WITH TIME ZONE)"
)
INSERT_LINE_SQL = (
    "INSERT INTO order_lines (id, order_id, variant_id, product_id, vendor_id, fulfilment_id, title, "
    "vendor_name, sku, size, color, unit_price_amount, quantity, line_total_amount, discount_amount, "
    "commission_bps, final_sale, cancelled_quantity, returned_quantity, created_at, updated_at) VALUES "
    "($1::UUID, $2::UUID, $3::UUID, $4::UUID, $5::UUID, $6::UUID, $7::VARCHAR, $8::VARCHAR, $9::VARCHAR, "
    "$10::VARCHAR, $11::VARCHAR, $12::BIGINT, $13::INTEGER, $14::BIGINT, $15::BIGINT, $16::INTEGER, "
    "$17::BOOLEAN, $18::INTEGER, $19::INTEGER, $20::TIMESTAMP WITH TIME ZONE, $21::TIMESTAMP WITH TIME ZONE)"
)
INSERT_KEY_SQL = (
    "INSERT INTO idempotency_keys (id, user_id, key, request_hash, order_id, response_status, response_body, "
    "expires_at, created_at, updated_at) VALUES ($1::UUID, $2::UUID, $3::VARCHAR, $4::VARCHAR, $5::UUID, "
    "$6::INTEGER, $7::JSONB, $8::TIMESTAMP WITH TIME ZONE, $9::TIMESTAMP WITH TIME ZONE, "
    "$10::TIMESTAMP WITH TIME ZONE)"
)
INSERT_OUTBOX_SQL = (
    "INSERT INTO outbox_messages (id, job_id, task_name, args, kwargs, labels, dispatched_at, attempts, "
    "last_error, created_at, updated_at) VALUES ($1::UUID, $2::UUID, $3::VARCHAR, $4::JSONB, $5::JSONB, "
    "$6::JSONB, $7::TIMESTAMP WITH TIME ZONE, $8::INTEGER, $9::VARCHAR, $10::TIMESTAMP WITH TIME ZONE, "
    "$11::TIMESTAMP WITH TIME ZONE)"
)
MARK_SENT_SQL = (
    "UPDATE outbox_messages SET dispatched_at=$1::TIMESTAMP WITH TIME ZONE, "
    "updated_at=$2::TIMESTAMP WITH TIME ZONE "
    "WHERE outbox_messages.job_id IN ($3::UUID) AND outbox_messages.dispatched_at IS NULL"
)
