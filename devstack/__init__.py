"""The local stack: embedded PostgreSQL 18 + pgvector and Redis (Valkey), and the `just up` supervisor."""
