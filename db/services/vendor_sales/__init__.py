"""A vendor's view of sales: the orders holding their lines, and revenue statistics.

A multi-vendor order is shown to each vendor with their own lines only; the order's grand total
and the buyer's email never leave through here.
"""
