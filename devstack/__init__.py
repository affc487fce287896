"""The local stack: embedded PostgreSQL 16 + pgvector and Redis, and the `just up` supervisor."""
