"""Vendors' payouts: the bank account a vendor is paid to, payouts on demand and on schedule,
their transfer through the payment provider and its webhooks, and staff holds."""
