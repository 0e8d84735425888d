"""A package with a tasks module, for app.autodiscover_tasks."""
