"""Runtime settings, read once from `PULSEBOARD_*` environment variables."""

from __future__ import annotations

import os
import re
from pathlib import Path

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "pulseboard"


# Settings whose values never appear in error messages: a token, and a URL that may carry a password.
SECRET_SETTINGS = frozenset({"PULSEBOARD_API_TOKEN", "PULSEBOARD_CLICKHOUSE_URL"})


class SettingsError(Exception):
    """A setting has an invalid value; the message names each variable and its fix."""


class Settings(BaseSettings):
    """Every setting pulseboard reads, with its default and meaning."""

    model_config = SettingsConfigDict(env_prefix="PULSEBOARD_", extra="ignore")

    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Folder for the embedded store, the API token and the server lock file.",
    )
    clickhouse_url: str = Field(
        default="",
        description="Store URL: chdb:///path for embedded chDB, http(s)://user:pass@host:8123/db for a "
        "ClickHouse server. Empty means chdb://<data_dir>/clickhouse.",
    )
    host: str = Field(default="127.0.0.1", description="Interface the HTTP server binds to.")
    port: int = Field(default=8787, ge=1, le=65535, description="TCP port of the HTTP server.")
    public_url: str = Field(
        default="",
        description="Base URL that published links start with. Empty means http://<host>:<port>.",
    )
    default_project: str = Field(default="default", description="Project used when a call names none.")
    api_token: str = Field(
        default="",
        description="Bearer token for /mcp and the admin API. Empty means a token generated at first "
        "start and stored in <data_dir>/api_token.",
    )
    cache_ttl_s: int = Field(default=60, ge=0, le=86_400, description="Default publication cache TTL, seconds.")
    query_timeout_s: int = Field(default=30, ge=1, le=3_600, description="Time limit of one query, seconds.")
    query_max_memory_mb: int = Field(default=2_048, ge=64, description="Memory limit of one query, MiB.")
    log_level: str = Field(default="INFO", description="Python logging level name.")

    @field_validator("default_project")
    @classmethod
    def check_project_id(cls, value: str) -> str:
        if not PROJECT_ID_PATTERN.match(value):
            raise ValueError(
                f"{value!r} is not a valid project id; use 1-63 lowercase letters, digits, '_' or '-'"
            )
        return value

    @field_validator("clickhouse_url")
    @classmethod
    def check_clickhouse_url(cls, value: str) -> str:
        if value and not value.startswith(("chdb://", "http://", "https://")):
            raise ValueError(
                f"{value!r} is not a store URL; use chdb:///absolute/path or http(s)://host:8123/db"
            )
        return value

    @field_validator("log_level")
    @classmethod
    def check_log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError(f"{value!r} is not a log level; use DEBUG, INFO, WARNING or ERROR")
        return level

    @model_validator(mode="after")
    def fill_derived(self) -> Settings:
        self.data_dir = self.data_dir.expanduser().resolve()
        if not self.clickhouse_url:
            self.clickhouse_url = f"chdb://{self.data_dir / 'clickhouse'}"
        if not self.public_url:
            self.public_url = f"http://{self.host}:{self.port}"
        self.public_url = self.public_url.rstrip("/")
        return self

    @property
    def embedded(self) -> bool:
        return self.clickhouse_url.startswith("chdb://")

    @property
    def chdb_path(self) -> Path | None:
        if not self.embedded:
            return None
        return Path(self.clickhouse_url.removeprefix("chdb://"))


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment; raise SettingsError listing every invalid variable."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        lines = []
        for problem in error.errors():
            name = "PULSEBOARD_" + "_".join(str(part) for part in problem["loc"]).upper()
            lines.append(f"{name}={shown_value(name, problem.get('input'))}: {problem['msg']}")
        raise SettingsError("Invalid settings:\n  " + "\n  ".join(lines)) from None


def shown_value(name: str, value: object) -> str:
    """Return a rejected value quoted for an error message, or <hidden> for a secret setting."""
    if name in SECRET_SETTINGS:
        return "<hidden>"
    return repr(value) if isinstance(value, str) else repr(str(value))
