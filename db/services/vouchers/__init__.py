"""Voucher codes: issued by stores and staff, applied to carts, used by orders, and their uses."""
