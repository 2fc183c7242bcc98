"""The ``wa-gateway`` service: every owner's linked WhatsApp number, one service.

neonize (whatsmeow in Go) keeps a live connection per linked number. It must not
run inside Celery workers (Go's runtime does not survive ``fork``) and a second
connection for a number kicks the first, so the connections live here:

- :mod:`.manager` starts and stops sessions one at a time, one thread per owner,
  behind a per-owner lock (PostgreSQL advisory lock, or a lock file on SQLite),
  reconnects with backoff, expires unpaired QR / pairing windows, and sends with
  an idempotency record;
- :mod:`.clients` wraps neonize and provides the test-mode double;
- :mod:`.process` runs each owner's neonize client in a process of its own (neonize
  crashes the whole process when two clients share one, see there);
- :mod:`.events` maps neonize events to ``wa_sessions`` facts (pure);
- :mod:`.server` is the internal HTTP API the app's ``GatewayClient`` calls.
"""
