"""Domain services (advanced-alchemy services over repositories). Services never commit."""
