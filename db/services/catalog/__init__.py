"""Catalog: stores, categories, brands, products, variants, images, size charts, public listing."""
