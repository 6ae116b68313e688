"""Errors of the pipeline services, with a stable `code`, a translated message and the unmet list.

Both subclass django-fsm's `TransitionNotAllowed`, so callers that already catch that keep working.
The API turns them into 409 `{"code", "detail", "unmet"}` (`as_dict()`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django_fsm import TransitionNotAllowed

from .models import Unmet


class TransitionRefused(TransitionNotAllowed):
    """The rules refuse the move. `unmet` names every reason (e.g. each missing exit criterion)."""

    default_code = "transition_not_allowed"

    def __init__(self, message: Any, *, code: str | None = None, unmet: Iterable[Unmet] = (), action: str = ""):
        self.message = message
        self.code = code or self.default_code
        self.unmet = list(unmet)
        self.action = action
        super().__init__(str(message))

    def __str__(self) -> str:
        return str(self.message)

    @property
    def detail(self) -> str:
        return str(self.message)

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "detail": self.detail, "unmet": [item.as_dict() for item in self.unmet]}


class ConflictError(TransitionRefused):
    """Someone else changed the opportunity since the caller loaded it (a concurrent move or edit)."""

    default_code = "conflict"
