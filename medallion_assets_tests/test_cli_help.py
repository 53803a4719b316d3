"""Every command-line option of the project's commands says what it does (`--help`)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from medallion_assets.dev.processes import run_command

pytestmark = pytest.mark.fast

COMMANDS = [
    ["medallion_assets.generator"],
    ["medallion_assets.demo"],
    ["medallion_assets.bench"],
    ["medallion_assets.baseline"],
    ["medallion_assets.ops", "rollback"],
    ["medallion_assets.dev.kafka_local", "up"],
    ["medallion_assets.dev.spark_connect", "up"],
    ["medallion_assets.dev.spark_warmup"],
    ["medallion_assets.dev.spark_cluster", "up"],
    ["medallion_assets.dev.object_store", "up"],
    ["medallion_assets.dev.postgres", "up"],
    ["medallion_assets.dev.dagster_home"],
]
OPTION = re.compile(r"^  (-\S.*?)(?:\s{2,}(\S.*))?$")


def options_without_help(help_text: str) -> list[str]:
    """Options of an argparse help text whose description is empty (none on its line or the next)."""
    lines = help_text.splitlines()
    missing = []
    for i, line in enumerate(lines):
        found = OPTION.match(line)
        if found and not found.group(2):
            following = lines[i + 1] if i + 1 < len(lines) else ""
            if not following.startswith(" " * 6) or following.strip().startswith("-"):
                missing.append(found.group(1))
    return missing


def test_the_checker_finds_an_option_without_help():
    text = "options:\n  -h, --help  show this\n  --users USERS\n  --days DAYS\n                        days of events\n"
    assert options_without_help(text) == ["--users USERS"]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c))
def test_every_option_has_help(command):
    env = {**os.environ, "JAVA_HOME": "/nonexistent"}
    done = subprocess.run([sys.executable, "-m", *command, "--help"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "options:" in done.stdout
    assert options_without_help(done.stdout) == []


def test_a_service_s_up_prints_lines_a_shell_exports(capsys):
    run_command("up", lambda: ["SPARK_REMOTE=sc://127.0.0.1:15002", "ODD=two words"], lambda: True, lambda: None)
    assert capsys.readouterr().out.splitlines() == ["export SPARK_REMOTE=sc://127.0.0.1:15002", "export ODD='two words'"]
