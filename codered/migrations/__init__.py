"""Alembic migrations, shipped as package data so ``codered db upgrade`` works from a wheel."""
