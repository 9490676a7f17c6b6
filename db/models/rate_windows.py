from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class RateWindow(Model):
    """Requests counted for one limit and caller in one fixed window, shared by every
    process (db/services/rate_limits.py); rows expire with their window."""

    # "<limit>:<caller>:<window number>": one row per counter and window.
    key = fields.CharField(max_length=200, primary_key=True)
    hits = fields.BigIntField(default=0)
    expires_at = fields.DatetimeField()

    class Meta:
        table = "rate_windows"
        indexes = (("expires_at",),)
