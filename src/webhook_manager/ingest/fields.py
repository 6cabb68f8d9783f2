"""Checks of single fields that events, configurations and queries share, with errors that name the field.
Pure, and cheap enough for hot paths."""

from __future__ import annotations

import re
from typing import Any

from webhook_manager.domain.errors import InvalidInput
from webhook_manager.domain.model import Action

TABLE_PATTERN = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_ACTIONS = ", ".join(a.value for a in Action)


def check_table(value: Any, field: str = "table") -> str:
    """A table or custom event name: 1–64 characters of A-Z a-z 0-9 _ . -"""
    if not isinstance(value, str):
        raise InvalidInput(field, "must be a string")
    if TABLE_PATTERN.fullmatch(value) is None:
        raise InvalidInput(field, "must be 1 to 64 characters of A-Z a-z 0-9 _ . -")
    return value


def check_action(value: Any, field: str = "action") -> Action:
    """One of insert, update, delete, confirm."""
    if not isinstance(value, str):
        raise InvalidInput(field, "must be a string")
    try:
        return Action(value)
    except ValueError:
        raise InvalidInput(field, f"must be one of {_ACTIONS}") from None
