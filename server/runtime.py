"""The objects one server process shares: settings and the open store."""

from __future__ import annotations

from dataclasses import dataclass

from pulseboard.server.settings import Settings
from pulseboard.server.store import Store


@dataclass
class Runtime:
    settings: Settings
    store: Store
