"""Storage: the schema, the engine, and Alembic migrations."""
