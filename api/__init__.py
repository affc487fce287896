"""HTTP API: the app factory, middleware, error mapping and one folder per domain."""
