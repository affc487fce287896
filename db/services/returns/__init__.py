"""Returns: shoppers send back delivered items inside the vendor's window; vendors decide,
receive them and the shopper is refunded."""
