from setuptools import find_packages, setup

setup(
    name="medallion_assets",
    version="0.1.0",
    description="Music-streaming medallion pipeline: Kafka -> PySpark -> Delta Lake, orchestrated by Dagster.",
    packages=find_packages(exclude=["medallion_assets_tests"]),
    package_data={"medallion_assets.resources": ["conf/*"], "medallion_assets.dev": ["conf/*"]},
    python_requires=">=3.11,<3.12",
    install_requires=[
        "dagster==1.13.27",
        "dagster-webserver==1.13.27",
        "dagster-dg-cli==1.13.27",  # `dg launch`, `dg list defs` (pyproject.toml's [tool.dg])
        "dagster-postgres==0.29.27",  # run, event-log and schedule storage in PostgreSQL (docker, MEDALLION_DAGSTER_STORAGE=postgres)
        "pyspark[connect]==4.2.0",  # [connect]: the Spark Connect client (SPARK_REMOTE)
        "delta-spark==4.4.0",
        "deltalake==1.6.6",
        "duckdb==2.0.1",  # raw: parses each Kafka message once, without a JVM
        "confluent-kafka==2.16.1",
        "pyarrow>=18,<24",
        "pandas>=2.2,<3",
        "tqdm>=4.66,<5",
    ],
    extras_require={
        "test": ["pytest>=8,<9", "pytest-timeout>=2.3,<3", "pytest-xdist==3.8.0", "polars==1.44.2", "playwright==1.65.2"],
    },
)
