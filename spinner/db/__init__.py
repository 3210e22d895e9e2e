"""Spinner's database: models, engine factory and migrations. The only source of truth."""
