"""The graph's external sources: the four Kafka topics raw reads and the two reference CSVs the
dimensions read. Nothing here materializes; the topics are observed by kafka_offsets_sensor (end
offsets and lag), the CSVs by an observation run that records their content hash as data version,
so a changed file shows the dimensions built from it as unsynced."""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable
from pathlib import Path

from dagster import (
    AssetKey,
    BetaWarning,
    AssetSpec,
    DataVersion,
    MetadataValue,
    ObserveResult,
    SourceAsset,
    observable_source_asset,
)

from medallion_assets.resources.warehouse import WarehouseResource
from medallion_assets.topics import TOPICS

GROUP = "sources"
HASH_CHUNK_BYTES = 1 << 20

TOPIC_ASSETS: dict[str, AssetSpec] = {
    topic: AssetSpec(
        key=AssetKey(["kafka", topic]),
        group_name=GROUP,
        kinds={"kafka"},
        description=f"Kafka topic {topic} (name prefixed by MEDALLION_TOPIC_PREFIX): one JSON event per record, "
        "keyed by userId. Observed with its end offsets and the records raw does not hold yet (lag).",
    )
    for topic in TOPICS
}


def file_version(path: str) -> str | None:
    """SHA-256 of a local file's bytes; None for a remote URI, which is not observed here."""
    if "://" in path:
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


# Where each reference CSV is, by asset name: the warehouse resource's setting.
REFERENCE_URIS: dict[str, Callable[[WarehouseResource], str]] = {
    "songs_csv": lambda warehouse: warehouse.songs_uri,
    "state_codes_csv": lambda warehouse: warehouse.state_codes_uri,
}


def reference_versions(warehouse: WarehouseResource) -> dict[str, str | None]:
    """Content hash of each reference CSV by name (None for a remote one)."""
    return {name: file_version(uri_of(warehouse)) for name, uri_of in REFERENCE_URIS.items()}


def reference_csv(name: str, description: str) -> SourceAsset:
    """An observable source for one reference CSV; its data version is its content hash."""
    uri_of = REFERENCE_URIS[name]

    with warnings.catch_warnings():  # observable sources are beta; this use is deliberate
        warnings.simplefilter("ignore", BetaWarning)
        decorator = observable_source_asset(
            key=AssetKey(["reference", name]), group_name=GROUP, description=description, tags={"dagster/kind/csv": ""}
        )

    @decorator
    def observe(warehouse: WarehouseResource) -> ObserveResult:
        uri = uri_of(warehouse)
        version = file_version(uri)
        metadata = {"uri": MetadataValue.path(uri)}
        if version is None:
            return ObserveResult(metadata=metadata)
        size = Path(uri).stat().st_size
        return ObserveResult(data_version=DataVersion(version), metadata={**metadata, "size_bytes": size})

    return observe


SONGS_CSV = reference_csv(
    "songs_csv", "songs.csv (MEDALLION_SONGS_CSV): the song catalogue dim_songs and dim_artists read."
)
STATE_CODES_CSV = reference_csv(
    "state_codes_csv",
    "state_codes.csv (MEDALLION_STATE_CODES_CSV): US state codes and names dim_location reads.",
)
REFERENCE_CSVS = (SONGS_CSV, STATE_CODES_CSV)
