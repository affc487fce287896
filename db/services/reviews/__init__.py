"""Product reviews by verified buyers, and the product rating summary they feed."""
