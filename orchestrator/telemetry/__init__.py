"""The telemetry store: SQLite (WAL) at work/telemetry.db.

`store` holds the schema, the numbered migrations and the read queries (plain sqlite3, no
event loop: `status` and `stats` start fast); `writer` holds the daemon's batching writer
(aiosqlite).
"""
