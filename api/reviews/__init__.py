"""Product reviews: read them, write yours (verified buyers), delete yours."""
