"""Persistence and the business rules that need it: models, services, migrations, unit of work."""
