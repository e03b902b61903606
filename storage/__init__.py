"""Everything that lasts: Postgres, Redis, encryption at rest, one module per aggregate."""
