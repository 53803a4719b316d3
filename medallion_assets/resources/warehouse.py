"""Where the Delta tables and the reference data live."""

from __future__ import annotations

import os
from pathlib import Path

from dagster import ConfigurableResource, EnvVar, InitResourceContext
from pydantic import Field

from medallion_assets.tables import Table


def absolute_uri(location: str) -> str:
    """A Hadoop URI unchanged (s3a://, abfss://, ...); a local path made absolute."""
    return location if "://" in location else os.path.abspath(location)


class WarehouseResource(ConfigurableResource):
    """Delta root and reference CSVs; any Hadoop URI for the root."""

    root: str | None = Field(default=None, description="Delta root; env MEDALLION_WAREHOUSE, default data/warehouse.")
    songs_csv: str | None = Field(default=None, description="songs.csv; env MEDALLION_SONGS_CSV, default data/songs.csv.")
    state_codes_csv: str | None = Field(
        default=None, description="state_codes.csv; env MEDALLION_STATE_CODES_CSV, default data/state_codes.csv."
    )

    @property
    def root_uri(self) -> str:
        """Absolute warehouse root."""
        return absolute_uri(self.root or EnvVar("MEDALLION_WAREHOUSE").get_value(default="data/warehouse") or "")

    def uri(self, table: Table) -> str:
        """Location of one table: <root>/<layer>/<name>."""
        return f"{self.root_uri.rstrip('/')}/{table.path}"

    @property
    def songs_uri(self) -> str:
        """Location of songs.csv."""
        return absolute_uri(self.songs_csv or EnvVar("MEDALLION_SONGS_CSV").get_value(default="data/songs.csv") or "")

    @property
    def state_codes_uri(self) -> str:
        """Location of state_codes.csv."""
        configured = self.state_codes_csv or EnvVar("MEDALLION_STATE_CODES_CSV").get_value(default="data/state_codes.csv")
        return absolute_uri(configured or "")

    def setup_for_execution(self, context: InitResourceContext) -> None:
        """Every run checks the root first, so a bad location fails before any table is touched."""
        self.ensure_writable()

    def ensure_writable(self) -> None:
        """Fail fast, naming the path, when a local warehouse root cannot be written."""
        root = self.root_uri
        if "://" in root:
            return
        path = Path(root)
        existing = next((p for p in (path, *path.parents) if p.exists()), None)
        if existing is None or not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            raise PermissionError(f"Delta warehouse {root} is not writable (checked {existing}).")
