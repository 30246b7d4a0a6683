"""Storage: the engine and sessions, the SQLModel tables, Alembic migrations."""
