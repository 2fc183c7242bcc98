"""The domain: every use case of FiberNode, below the UI, the API and the workers.

Nothing here imports Reflex, the pages, the API or the Celery workers (``lint-imports``
checks it): background work is handed over by task name through
:mod:`fibernode.services.jobqueue`, whose sender each process installs.
"""
