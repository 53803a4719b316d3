"""The external sources in the graph: Kafka topics upstream of raw, reference CSVs upstream of the
dimensions, and the CSVs' content hash as their data version. No JVM, no broker."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from dagster import AssetKey, AssetRecordsFilter, DagsterInstance, Definitions, build_sensor_context

from medallion_assets.definitions import defs
from medallion_assets.orchestration.jobs import observe_reference_job
from medallion_assets.orchestration.sensors.reference_files import reference_files_sensor
from medallion_assets.paths import DATA_DIR
from medallion_assets.resources.warehouse import WarehouseResource
from medallion_assets.sources import REFERENCE_CSVS, SONGS_CSV, STATE_CODES_CSV, TOPIC_ASSETS
from medallion_assets.tables import DIM_ARTISTS, DIM_LOCATION, DIM_SONGS, RAW
from medallion_assets.topics import TOPICS

pytestmark = pytest.mark.fast


def test_the_graph_starts_at_four_topics_and_two_csvs():
    graph = defs.resolve_asset_graph()
    external = {key for key in graph.get_all_asset_keys() if not graph.get(key).is_materializable}
    assert external == {*(spec.key for spec in TOPIC_ASSETS.values()), SONGS_CSV.key, STATE_CODES_CSV.key}
    for topic in TOPICS:
        assert graph.get(RAW[topic].asset_key).parent_keys == {AssetKey(["kafka", topic])}
    assert SONGS_CSV.key in graph.get(DIM_SONGS.asset_key).parent_keys
    assert SONGS_CSV.key in graph.get(DIM_ARTISTS.asset_key).parent_keys
    assert STATE_CODES_CSV.key in graph.get(DIM_LOCATION.asset_key).parent_keys


def reference_copy(tmp_path: Path) -> WarehouseResource:
    """A warehouse resource reading copies of the shipped CSVs."""
    for name in ("songs.csv", "state_codes.csv"):
        shutil.copy(DATA_DIR / name, tmp_path / name)
    return WarehouseResource(root=str(tmp_path / "wh"), songs_csv=str(tmp_path / "songs.csv"), state_codes_csv=str(tmp_path / "state_codes.csv"))


def observe(warehouse: WarehouseResource, instance: DagsterInstance) -> dict[AssetKey, str | None]:
    """Run observe_reference_job; the data version each CSV got."""
    job = Definitions(assets=list(REFERENCE_CSVS), jobs=[observe_reference_job], resources={"warehouse": warehouse})
    assert job.resolve_job_def(observe_reference_job.name).execute_in_process(instance=instance).success
    versions = {}
    for csv in REFERENCE_CSVS:
        [record] = instance.fetch_observations(AssetRecordsFilter(asset_key=csv.key), limit=1).records
        versions[csv.key] = record.asset_observation.tags.get("dagster/data_version")
    return versions


def test_a_csv_s_data_version_is_its_content_hash_and_changes_with_it(tmp_path):
    warehouse = reference_copy(tmp_path)
    instance = DagsterInstance.ephemeral()
    songs = tmp_path / "songs.csv"
    before = observe(warehouse, instance)
    assert before[SONGS_CSV.key] == hashlib.sha256(songs.read_bytes()).hexdigest()
    assert before[STATE_CODES_CSV.key] == hashlib.sha256((tmp_path / "state_codes.csv").read_bytes()).hexdigest()
    songs.write_text(songs.read_text() + "\n")
    after = observe(warehouse, instance)
    assert after[SONGS_CSV.key] != before[SONGS_CSV.key]
    assert after[STATE_CODES_CSV.key] == before[STATE_CODES_CSV.key]


def test_the_reference_sensor_requests_an_observation_only_when_a_file_changes(tmp_path):
    warehouse = reference_copy(tmp_path)

    def tick(cursor: str | None):
        with build_sensor_context(resources={"warehouse": warehouse}, cursor=cursor) as context:
            return reference_files_sensor.evaluate_tick(context)

    first = tick(None)
    [request] = first.run_requests
    unchanged = tick(first.cursor)
    assert unchanged.run_requests == [] and unchanged.skip_message == "Reference files unchanged"
    (tmp_path / "state_codes.csv").write_text("code,name\nXX,Nowhere\n")
    [again] = tick(first.cursor).run_requests
    assert again.run_key != request.run_key
    (tmp_path / "songs.csv").unlink()
    assert "songs.csv" in tick(first.cursor).skip_message
