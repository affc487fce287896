"""Vendors' shipping profiles and the shipping quotes and choices of carts and orders."""
