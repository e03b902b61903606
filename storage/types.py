"""Small shared types for the storage modules."""

from __future__ import annotations

from typing import TypeAlias

import asyncpg

# Aggregate functions accept either the pool (one statement) or a connection
# (when the caller holds a transaction).
Executor: TypeAlias = asyncpg.Pool | asyncpg.Connection | asyncpg.pool.PoolConnectionProxy
