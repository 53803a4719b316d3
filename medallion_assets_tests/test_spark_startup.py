"""What a Spark start takes from the startup cache the warm-up fills, decided from files alone. No JVM."""

from __future__ import annotations

import contextlib

import pytest

from medallion_assets.resources.spark import StartupCache, ivy_lock, spark_conf

pytestmark = pytest.mark.fast


@pytest.fixture
def conf(tmp_path):
    """The pipeline's conf with its Ivy cache in tmp_path."""
    return spark_conf(ivy_dir=str(tmp_path / "ivy"))


def record(cache: StartupCache, *jars) -> None:
    """A jar list as the warm-up writes it (file:// URIs, comma-separated)."""
    cache.folder.mkdir(parents=True, exist_ok=True)
    cache.jars_file.write_text(",".join(f"file://{jar}" for jar in jars))


def test_a_cold_cache_changes_nothing(conf):
    assert StartupCache.of(conf).applied(conf) == conf
    assert not isinstance(ivy_lock(conf), contextlib.nullcontext)  # the packages are resolved, under the lock


def test_a_warm_cache_replaces_the_packages_by_their_jars_and_maps_the_archive(conf, tmp_path):
    cache = StartupCache.of(conf)
    jars = [tmp_path / "a.jar", tmp_path / "b.jar"]
    for jar in jars:
        jar.write_bytes(b"jar")
    record(cache, *jars)
    cache.archive.write_bytes(b"archive")
    applied = cache.applied(conf)
    assert "spark.jars.packages" not in applied
    assert applied["spark.jars"] == f"file://{jars[0]},file://{jars[1]}"
    assert applied["spark.driver.extraJavaOptions"] == f"{conf['spark.driver.extraJavaOptions']} -XX:SharedArchiveFile={cache.archive}"
    assert isinstance(ivy_lock(applied), contextlib.nullcontext)  # nothing to resolve, nothing to wait for


def test_a_jar_gone_from_the_ivy_cache_means_resolving_again(conf, tmp_path):
    cache = StartupCache.of(conf)
    (tmp_path / "a.jar").write_bytes(b"jar")
    record(cache, tmp_path / "a.jar", tmp_path / "gone.jar")
    assert cache.applied(conf)["spark.jars.packages"] == conf["spark.jars.packages"]


def test_the_archive_is_per_java_and_the_jar_list_per_package_set(conf, tmp_path, monkeypatch):
    cache = StartupCache.of(conf)
    archive, jars_file = cache.archive, cache.jars_file
    other_java = tmp_path / "jdk"
    (other_java / "bin").mkdir(parents=True)
    (other_java / "bin" / "java").write_text("")
    monkeypatch.setenv("JAVA_HOME", str(other_java))
    assert cache.archive != archive
    more = spark_conf(ivy_dir=str(tmp_path / "ivy"), extra_packages=["org.example:extra:1.0"])
    assert StartupCache.of(more).jars_file != jars_file
