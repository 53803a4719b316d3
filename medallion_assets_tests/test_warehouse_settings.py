"""The warehouse resource's settings for an s3a:// root, as Spark and delta-rs receive them. No JVM."""

from __future__ import annotations

import pytest

from medallion_assets.resources.spark import USER_IVY_DIR, hadoop_aws_package, spark_conf
from medallion_assets.resources.warehouse import WarehouseResource

pytestmark = pytest.mark.fast

STORE = {"MEDALLION_S3_ENDPOINT": "http://127.0.0.1:8333", "AWS_ACCESS_KEY_ID": "key", "AWS_SECRET_ACCESS_KEY": "s3cret"}


def test_a_local_root_needs_no_s3_settings(tmp_path):
    warehouse = WarehouseResource(root=str(tmp_path))
    assert (warehouse.on_s3, warehouse.spark_settings(), warehouse.storage_options()) == (False, {}, {})


def test_an_s3a_root_gets_its_endpoint_and_credentials_from_the_environment(monkeypatch):
    for key, value in STORE.items():
        monkeypatch.setenv(key, value)
    warehouse = WarehouseResource(root="s3a://warehouse/medallion")
    assert warehouse.spark_settings() == {
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.endpoint.region": "us-east-1",
        "spark.hadoop.fs.s3a.endpoint": "http://127.0.0.1:8333",
        "spark.hadoop.fs.s3a.connection.ssl.enabled": "false",
        "spark.hadoop.fs.s3a.aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
        "spark.hadoop.fs.s3a.access.key": "key",
        "spark.hadoop.fs.s3a.secret.key": "s3cret",
    }
    assert warehouse.storage_options() == {
        "AWS_REGION": "us-east-1",
        "AWS_VIRTUAL_HOSTED_STYLE_REQUEST": "false",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:8333",
        "AWS_ALLOW_HTTP": "true",
        "AWS_ACCESS_KEY_ID": "key",
        "AWS_SECRET_ACCESS_KEY": "s3cret",
    }
    assert "s3cret" not in repr(warehouse)  # read when needed, not held as configuration the UI shows


def test_s3a_brings_hadoop_aws_of_pyspark_s_hadoop_into_the_user_cache():
    assert hadoop_aws_package() == "org.apache.hadoop:hadoop-aws:3.5.0"
    conf = spark_conf(extra_packages=[hadoop_aws_package()])
    assert conf["spark.jars.packages"].endswith(",org.apache.hadoop:hadoop-aws:3.5.0")
    assert conf["spark.jars.ivy"] == str(USER_IVY_DIR)
    assert spark_conf()["spark.jars.ivy"] != str(USER_IVY_DIR)  # the small packages stay in the clone's cache
