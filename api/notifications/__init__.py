"""A shopper's in-app notifications."""
