"""A step over few rows interprets Spark's standalone projections; one over many, or over every day,
generates them as Spark does by default; the session is left as it was either way."""

from medallion_assets.resources.spark import CODEGEN_FACTORY_MODE, INTERPRETED_UP_TO_ROWS, code_generation_for


def test_few_rows_interpret_and_the_session_is_left_as_it_was(spark):
    default = spark.conf.get(CODEGEN_FACTORY_MODE)
    assert default != "NO_CODEGEN"
    with code_generation_for(spark, 1_000) as interpreted:
        assert interpreted and spark.conf.get(CODEGEN_FACTORY_MODE) == "NO_CODEGEN"
        rows = spark.range(4).selectExpr("id", "id * 2 AS twice").where("id % 2 = 1").collect()
        assert [(r.id, r.twice) for r in rows] == [(1, 2), (3, 6)]
    assert spark.conf.get(CODEGEN_FACTORY_MODE) == default


def test_many_rows_or_every_day_keep_generated_code(spark):
    for rows in (INTERPRETED_UP_TO_ROWS + 1, None):
        with code_generation_for(spark, rows) as interpreted:
            assert not interpreted and spark.conf.get(CODEGEN_FACTORY_MODE) != "NO_CODEGEN"
