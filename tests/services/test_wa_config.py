"""Queue limits and the reminder schedule: defaults, validation, storage, audit."""

from __future__ import annotations

import pytest
from sqlmodel import select

from fibernode.db import new_session
from fibernode.models import ActivityLog, Setting
from fibernode.services import wa_config
from fibernode.services.errors import PermissionDenied, ValidationFailed
from fibernode.services.wa_config import RateConfig


def test_defaults_are_the_spec_rate_config(world):
    config = wa_config.get_wa_config(world.admin)
    assert config == {
        "min_delay_s": 8, "max_delay_s": 15, "jitter_s": 5, "max_per_hour": 50,
        "max_per_day": 300, "batch_size": 20, "batch_cooldown_s": 300,
        "retry_delay_s": 600, "max_retries": 3, "quiet_start": "21:00",
        "quiet_end": "06:00", "reminder_offsets": [-1]}
    assert wa_config.load_rate_config() == RateConfig()
    assert wa_config.load_reminder_offsets() == [-1]


def test_update_stores_validates_and_audits(world):
    changes = wa_config.update_wa_config(world.admin, {
        "min_delay_s": "10", "max_delay_s": 20, "max_per_hour": 40, "quiet_start": "22:00",
        "quiet_end": "5:30", "reminder_offsets": [3, -1, -3]})
    assert changes["min_delay_s"] == {"from": 8, "to": 10}
    assert changes["reminder_offsets"] == {"from": [-1], "to": [-3, -1, 3]}
    rate = wa_config.load_rate_config()
    assert (rate.min_delay_s, rate.max_delay_s, rate.max_per_hour) == (10, 20, 40)
    assert (rate.quiet_start, rate.quiet_end) == ("22:00", "05:30")
    assert wa_config.load_reminder_offsets() == [-3, -1, 3]
    with new_session() as s:
        stored = dict(s.exec(select(Setting.key, Setting.value).where(
            Setting.key.startswith("wa_"))).all())
        audit = s.exec(select(ActivityLog).where(
            ActivityLog.action == "wa.config.update")).one()
    assert stored["wa_rate.min_delay_s"] == "10"
    assert stored["wa_reminder_offsets"] == "-3,-1,3"
    assert audit.user_id == world.admin.user_id
    assert audit.meta["changes"]["quiet_end"] == {"from": "06:00", "to": "05:30"}
    # Saving the same values again changes nothing and writes no audit row.
    assert wa_config.update_wa_config(world.admin, {"min_delay_s": 10}) == {}


def test_quiet_hours_can_be_switched_off_and_offsets_emptied(world):
    wa_config.update_wa_config(world.admin, {"quiet_start": "", "quiet_end": "",
                                             "reminder_offsets": "H-7, H+7"})
    rate = wa_config.load_rate_config()
    assert (rate.quiet_start, rate.quiet_end) == ("", "")
    assert wa_config.load_reminder_offsets() == [-7, 7]
    wa_config.update_wa_config(world.admin, {"reminder_offsets": []})
    assert wa_config.load_reminder_offsets() == []


@pytest.mark.parametrize(("values", "field", "message"), [
    ({"min_delay_s": 0}, "min_delay_s", "positif"),
    ({"min_delay_s": "abc"}, "min_delay_s", "bilangan bulat"),
    ({"min_delay_s": 2.5}, "min_delay_s", "bilangan bulat"),
    ({"jitter_s": -1}, "jitter_s", "negatif"),
    ({"max_retries": 11}, "max_retries", "Maksimal 10"),
    ({"min_delay_s": 30, "max_delay_s": 20}, "min_delay_s", "tidak boleh lebih besar"),
    ({"max_per_hour": 400}, "max_per_hour", "melebihi batas per hari"),
    ({"quiet_start": "25:00"}, "quiet_start", "JJ:MM"),
    ({"quiet_start": ""}, "quiet_start", "kosongkan keduanya"),
    ({"quiet_end": "21:00"}, "quiet_end", "berbeda"),
    ({"reminder_offsets": [-2]}, "reminder_offsets", "H-7, H-3, H-1, H+1, H+3, H+7"),
    ({"warna": "merah"}, "warna", "tidak dikenal"),
])
def test_invalid_values_are_refused_in_indonesian(world, values, field, message):
    with pytest.raises(ValidationFailed) as exc:
        wa_config.update_wa_config(world.admin, values)
    assert message in exc.value.details[field]
    assert wa_config.load_rate_config() == RateConfig()


def test_mitra_may_not_read_or_change_the_limits(world):
    with pytest.raises(PermissionDenied):
        wa_config.get_wa_config(world.mitra_a)
    with pytest.raises(PermissionDenied):
        wa_config.update_wa_config(world.mitra_a, {"max_per_day": 1000})


def test_a_broken_stored_value_falls_back_to_the_default(world):
    with new_session() as s:
        s.add(Setting(key="wa_rate.max_per_day", value="banyak"))
        s.add(Setting(key="wa_reminder_offsets", value="-1,x"))
        s.commit()
    assert wa_config.load_rate_config().max_per_day == 300
    assert wa_config.load_reminder_offsets() == [-1]
