"""Each vendor's part of an order: listing, packing, shipping, delivering and cancelling it."""
