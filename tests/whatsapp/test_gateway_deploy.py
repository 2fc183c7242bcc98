"""The wa-gateway is deployed as one instance, stopped before its successor starts."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_compose_never_runs_two_gateways():
    service = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["wa-gateway"]
    # A fixed name: compose refuses to scale the service past one container.
    assert service.get("container_name")
    assert service.get("scale", 1) == 1
    deploy = service.get("deploy") or {}
    assert deploy.get("replicas", 1) == 1
    assert (deploy.get("update_config") or {}).get("order", "stop-first") == "stop-first"
    # Room to stop the clients and release the locks before SIGKILL.
    assert service.get("stop_grace_period")


def test_the_real_phone_checklist_is_there_and_linked():
    readme = (ROOT / "README.md").read_text()
    assert "docs/whatsapp-real-phone.md" in readme
    assert "stop-first" in readme
    checklist = (ROOT / "docs" / "whatsapp-real-phone.md").read_text().lower()
    for step in ("link by qr", "pairing code", "delivered", "read", "with and without `+`",
                 "unlink from the phone", "restart resumes without a qr",
                 "60-second network cut", "link twice in a row"):
        assert step in checklist, step
