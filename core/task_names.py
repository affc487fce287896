"""Names of the background tasks that product code sends: the contract between senders and tasks.

A task's name starts with its queue (``<queue>.<domain>.<task>``), so anything can send it by
name without importing task code. ``tests/test_task_names.py`` checks that every ``defer()`` in
the product names one of these constants and that each of them is registered by a task module.
"""

from __future__ import annotations

from typing import Final

MEASURE_BODY: Final = "inference.body.measure"
EMBED_IMAGE: Final = "inference.catalog.embed_image"
EMBED_QUERY: Final = "inference.catalog.embed_query"
PROCESS_IMAGE: Final = "critical.catalog.process_image"
PROCESS_PAYMENT_EVENT: Final = "critical.payments.process_event"
REFUND_PAYMENT: Final = "critical.payments.refund"
SEND_CODE: Final = "emails.identity.send_code"
SEND_ACCOUNT_EXISTS: Final = "emails.identity.send_account_exists"
SEND_ORDER_CONFIRMATION: Final = "emails.orders.send_confirmation"
FAN_OUT_ORDER_PLACED: Final = "emails.orders.fan_out_placed"
SEND_ORDER_STATUS_UPDATE: Final = "emails.orders.send_status_update"
NOTIFY_ORDER_UPDATE: Final = "emails.notifications.order_update"
RECORD_ORDER_EVENT: Final = "analytics.orders.record_event"
REFRESH_SHOPPER_SIZES: Final = "analytics.fit.refresh_shopper_sizes"
NOTIFY_VENDORS_OF_SALE: Final = "emails.notifications.vendor_sale"
NOTIFY_FULFILMENT_UPDATE: Final = "emails.notifications.fulfilment_update"
SEND_SHIPMENT_MAIL: Final = "emails.fulfilment.send_shipped"
NOTIFY_REFUND_SENT: Final = "emails.notifications.refund_sent"
SEND_PAYOUT: Final = "critical.payouts.send"
PROCESS_TRANSFER_EVENT: Final = "critical.payouts.process_event"
