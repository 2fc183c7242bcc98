"""WhatsApp gateways (no Reflex here): see :mod:`fibernode.whatsapp.base`.

``get_gateway()`` returns the process's gateway for ``WA_MODE``; tests install a
recording gateway with ``set_gateway``.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # kept out of imports: a wa-gateway owner process loads only neonize
    from fibernode.whatsapp.base import Gateway

_lock = threading.Lock()
_gateway: Gateway | None = None


def _build(mode: str) -> Gateway:
    if mode == "neonize":
        from fibernode.whatsapp.gateway_client import GatewayClient

        return GatewayClient()
    if mode == "cloud":
        from fibernode.whatsapp.cloud import CloudGateway

        return CloudGateway()
    from fibernode.whatsapp.outbox import OutboxGateway

    return OutboxGateway()


def get_gateway() -> Gateway:
    """The gateway of this process, built on first use from ``WA_MODE``."""
    global _gateway
    with _lock:
        if _gateway is None:
            from fibernode.config import get_settings

            _gateway = _build(get_settings().wa_mode)
        return _gateway


def set_gateway(gateway: Gateway | None) -> None:
    """Replace the process's gateway (tests); ``None`` rebuilds it from settings."""
    global _gateway
    with _lock:
        if _gateway is not None and _gateway is not gateway:
            _gateway.close()
        _gateway = gateway
