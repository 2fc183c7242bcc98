"""Celery app and tasks; tasks call fibernode.services and hold no business logic."""
