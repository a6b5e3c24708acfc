"""Alembic migrations of the ops store."""
