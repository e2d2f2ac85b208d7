"""One process per embedded store folder, and a way to find the process that has it open.

chDB opens a data folder from one process only; a second one fails with an unhelpful
`Error initializing EmbeddedServer`. A lock file beside the folder turns that into a message
naming the holder and where to connect instead.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any


@dataclass(frozen=True)
class LockHolder:
    pid: int
    command: str
    url: str


class StoreLock:
    """An exclusive lock on `<store folder>.lock`, released when closed or when the process dies."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder.with_name(folder.name + ".lock")
        self._file: IO[str] | None = None

    def acquire(self, command: str, url: str = "") -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False

        self._file = handle
        self.describe(command, url)
        return True

    def describe(self, command: str, url: str = "") -> None:
        """Record who holds the lock, so a second process can point its user at the right URL."""
        if self._file is None:
            return
        self._file.seek(0)
        self._file.truncate()
        json.dump({"pid": os.getpid(), "command": command, "url": url}, self._file)
        self._file.flush()

    def holder(self) -> LockHolder | None:
        try:
            data: dict[str, Any] = json.loads(self.path.read_text() or "{}")
        except (OSError, json.JSONDecodeError):
            return None
        if "pid" not in data:
            return None
        return LockHolder(int(data["pid"]), str(data.get("command", "")), str(data.get("url", "")))

    def release(self) -> None:
        if self._file is None:
            return
        self._file.close()
        self._file = None
