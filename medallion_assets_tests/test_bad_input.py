"""Bad configuration and reference data: one clear error naming the problem, no partial table."""

from __future__ import annotations

from pathlib import Path

from dagster import AssetSelection, materialize

from medallion_assets.definitions import all_assets, resources
from medallion_assets.resources.kafka import KafkaResource
from medallion_assets.resources.warehouse import WarehouseResource
from medallion_assets.tables import DIM_SONGS, RAW


def failure_text(result) -> str:
    """Every error message and cause of a failed run, as one string."""
    texts = []
    for event in result.all_events:
        error = getattr(event.event_specific_data, "error", None)
        while error is not None:
            texts.append(error.message)
            error = error.cause
    return "\n".join(texts)


def run(selection: str, **overrides):
    return materialize(
        all_assets,
        selection=AssetSelection.from_string(selection),
        resources={**resources, **overrides},
        raise_on_error=False,
    )


def test_missing_songs_csv_is_named(spark, tmp_path):
    missing = tmp_path / "nowhere" / "songs.csv"
    result = run('key:"silver/dim_songs"', warehouse=WarehouseResource(root=str(tmp_path / "wh"), songs_csv=str(missing)))
    assert not result.success
    assert f"Reference file {missing} does not exist" in failure_text(result)
    assert not (tmp_path / "wh" / DIM_SONGS.path).exists()


def test_songs_csv_without_the_expected_columns_is_named(spark, tmp_path):
    bad = tmp_path / "songs.csv"
    bad.write_text("song,artist\nA,B\n")
    result = run('key:"silver/dim_artists"', warehouse=WarehouseResource(root=str(tmp_path / "wh"), songs_csv=str(bad)))
    assert not result.success
    text = failure_text(result)
    assert f"Reference file {bad} lacks columns" in text and "'artist_id'" in text
    assert not (tmp_path / "wh" / "silver").exists()


def test_unreachable_broker_is_named(spark, tmp_path):
    kafka = KafkaResource(bootstrap_servers="127.0.0.1:1", timeout_s=2)
    result = run('key:"raw/listen_events"', kafka=kafka, warehouse=WarehouseResource(root=str(tmp_path / "wh")))
    assert not result.success
    assert "Kafka broker 127.0.0.1:1 did not answer" in failure_text(result)
    assert not (tmp_path / "wh" / RAW["listen_events"].path).exists()


def test_unwritable_warehouse_is_named(spark, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    root = blocker / "warehouse"
    result = run('key:"silver/dim_songs"', warehouse=WarehouseResource(root=str(root)))
    assert not result.success
    assert f"Delta warehouse {root} is not writable" in failure_text(result)
    assert not Path(root).exists()
