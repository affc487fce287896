"""A shopper's wishlist: the products they saved for later."""
