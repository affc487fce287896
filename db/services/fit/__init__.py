"""Fit: size advice for a product and the products whose sizes fit a shopper's body profile."""
