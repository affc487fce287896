"""Adapters to services outside the product: payment providers, mail, media storage, tokens,
password hashing, rate limits, image decoding and tracing."""
