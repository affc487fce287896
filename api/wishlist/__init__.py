"""The caller's wishlist: saved products."""
