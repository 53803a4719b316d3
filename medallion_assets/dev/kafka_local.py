"""A local Apache Kafka in KRaft mode: one broker, or a cluster of combined broker + controller nodes.

The brokers run as plain JVM processes built from Maven Central jars, so
developing and testing the pipeline needs neither Docker nor a Kafka
installation: only Java 17+ and network access to Maven Central on the very
first run.

Layout
------
``lib_dir`` (default ``<repo>/.cache/kafka-lib``, shared by every home)::

    kafka_2.13-<version>/*.jar   Kafka and its runtime dependencies
    kafka_2.13-<version>/.complete
    ivy-cache/                   resolver cache
    .lock                        serialises first downloads

``home`` (default ``<repo>/.cache/kafka``, one per broker)::

    config/server.properties     owner-only (a secured node's holds the brokers' password)
    config/log4j2.properties
    data/                        KRaft metadata + topic logs (formatted once)
    logs/server.out              JVM stdout/stderr (warnings and errors)
    logs/server.log              full broker log
    kafka.pid
    .lock                        serialises start/stop of this home

A cluster's home (default ``<repo>/.cache/kafka-cluster``) holds ``node-<i>/`` (a broker
home each; all nodes vote in the quorum), ``cluster.id`` and, with ``--security sasl_ssl``,
``security/`` (mode 0700): ``ca.pem`` (a CA made here), ``broker.pem`` (the brokers' key
and certificate for 127.0.0.1) and ``credentials.json`` (SCRAM-SHA-512 passwords of the
client user and the brokers' user, generated once, mode 0600). Clients and brokers talk
SASL_SSL; the controllers' quorum listener stays PLAINTEXT on 127.0.0.1.

``KAFKA_HEAP_OPTS`` overrides the broker heap (default ``-Xms256m -Xmx512m``);
``MEDALLION_KAFKA_HOME`` and ``MEDALLION_KAFKA_LIB_DIR`` override the default
home and jar cache.

Python API: :func:`ensure_broker`, :func:`stop_broker`, :func:`broker_ready`,
:func:`broker_pid`; :class:`Cluster`, :func:`ensure_cluster`, :func:`stop_cluster`;
topics are created with :func:`medallion_assets.topics.create_topics`.

CLI::

    python -m medallion_assets.dev.kafka_local up|down|status \
        [--brokers N] [--security plaintext|sasl_ssl] [--port N] [--home DIR] [--lib-dir DIR] \
        [--partitions N] [--topics a,b]

``up`` prints ``export KAFKA_...=...`` lines for ``eval "$(...)"``: the broker list and,
for a secured cluster, protocol, mechanism, user, password and CA file.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import errno
import hashlib
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from medallion_assets.dev.processes import run_command, write_private
from medallion_assets.paths import REPO_ROOT, file_lock
from medallion_assets.topics import (
    TOPICS,
    TopicCreationError,
    create_topics,
    environment_lines,
    jaas_config,
    replication_for,
    wait_for_leaders,
)

KAFKA_VERSION = "4.1.1"
SCALA_BINARY_VERSION = "2.13"
# Kafka 4.1 logs through SLF4J 1.7 -> Log4j 2; the binding is not a dependency
# of the kafka_2.13 artifact, so it is added explicitly (same Log4j version as
# the one Kafka depends on).
LOG4J_VERSION = "2.24.3"
EXTRA_ARTIFACTS: tuple[tuple[str, str, str], ...] = (
    ("org.apache.logging.log4j", "log4j-slf4j-impl", LOG4J_VERSION),
)

DEFAULT_TOPICS: tuple[str, ...] = TOPICS
DEFAULT_PORT = 9092
HOST = "127.0.0.1"
MAX_MESSAGE_BYTES = 10 * 1024 * 1024
DEFAULT_HEAP_OPTS = "-Xms256m -Xmx512m"
STOP_GRACE_S = 20.0

DEFAULT_HOME = REPO_ROOT / ".cache" / "kafka"
DEFAULT_CLUSTER_HOME = REPO_ROOT / ".cache" / "kafka-cluster"
DEFAULT_CLUSTER_PORT = 9192
DEFAULT_BROKERS = 3
SCRAM_MECHANISM = "SCRAM-SHA-512"
SCRAM_ITERATIONS = 8192
CLIENT_USER = "medallion"
BROKER_USER = "broker"
CERT_DAYS = 825
DEFAULT_LIB_DIR = REPO_ROOT / ".cache" / "kafka-lib"
MAVEN_CENTRAL = "https://repo1.maven.org/maven2/"

# Environment overrides (all optional).
ENV_HOME = "MEDALLION_KAFKA_HOME"
ENV_LIB_DIR = "MEDALLION_KAFKA_LIB_DIR"
ENV_RESOLVER = "MEDALLION_KAFKA_RESOLVER"  # auto | ivy | maven
ENV_MAVEN_REPO = "MEDALLION_KAFKA_MAVEN_REPO"


class KafkaLocalError(RuntimeError):
    """Raised when the local broker cannot be provisioned, started or reached."""


# --------------------------------------------------------------------------- #
# Small helpers
# --------------------------------------------------------------------------- #


def default_home() -> Path:
    return Path(os.environ.get(ENV_HOME) or DEFAULT_HOME)


def default_lib_dir() -> Path:
    return Path(os.environ.get(ENV_LIB_DIR) or DEFAULT_LIB_DIR)


def _resolve_home(home: Path | str | None) -> Path:
    return Path(home).expanduser().resolve() if home is not None else default_home().resolve()


def _resolve_lib_dir(lib_dir: Path | str | None) -> Path:
    return Path(lib_dir).expanduser().resolve() if lib_dir is not None else default_lib_dir().resolve()


def _bootstrap(port: int) -> str:
    return f"{HOST}:{port}"


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if not java:
        raise KafkaLocalError(
            "No `java` found on PATH (and JAVA_HOME is not set): Kafka needs Java 17+."
        )
    return java


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"<{path} not readable>"
    return "\n".join(text.splitlines()[-lines:]) or f"<{path} is empty>"


_START_MARKER = "=== starting broker"


def _log_excerpt(home: Path, lines: int = 25) -> str:
    """Last lines of the JVM output of the latest start, then of the broker log."""
    logs = home / "logs"
    parts = []
    out = logs / "server.out"
    if out.exists():
        text = out.read_text(errors="replace")
        latest = text[text.rfind(_START_MARKER) :] if _START_MARKER in text else text
        tail = "\n".join(latest.splitlines()[-lines:])
        parts.append(f"--- last lines of {out} ---\n{tail}")
    log = logs / "server.log"
    if log.exists():
        parts.append(f"--- last lines of {log} ---\n{_tail(log, lines)}")
    return "\n".join(parts) or f"<no log files under {logs}>"


# --------------------------------------------------------------------------- #
# Jars: download once into lib_dir
# --------------------------------------------------------------------------- #


def _jar_dir(lib_dir: Path) -> Path:
    return lib_dir / f"kafka_{SCALA_BINARY_VERSION}-{KAFKA_VERSION}"


def _coordinates() -> list[tuple[str, str, str]]:
    return [("org.apache.kafka", f"kafka_{SCALA_BINARY_VERSION}", KAFKA_VERSION), *EXTRA_ARTIFACTS]


def _find_ivy_jar() -> Path | None:
    spec = importlib.util.find_spec("pyspark")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        jars = sorted((Path(location) / "jars").glob("ivy-*.jar"))
        if jars:
            return jars[-1]
    return None


def _resolve_with_ivy(ivy_jar: Path, lib_dir: Path, dest: Path) -> None:
    work = dest.parent / f"{dest.name}.ivy"
    work.mkdir(parents=True, exist_ok=True)
    repo = os.environ.get(ENV_MAVEN_REPO) or MAVEN_CENTRAL
    (work / "ivysettings.xml").write_text(
        "<ivysettings>\n"
        '  <settings defaultResolver="central"/>\n'
        "  <resolvers>\n"
        f'    <ibiblio name="central" m2compatible="true" root="{repo}"/>\n'
        "  </resolvers>\n"
        "</ivysettings>\n"
    )
    deps = "\n".join(
        f'    <dependency org="{g}" name="{a}" rev="{v}" conf="default->default"/>'
        for g, a, v in _coordinates()
    )
    (work / "ivy.xml").write_text(
        '<ivy-module version="2.0">\n'
        '  <info organisation="medallion-assets" module="kafka-local"/>\n'
        '  <configurations><conf name="default"/></configurations>\n'
        f"  <dependencies>\n{deps}\n  </dependencies>\n"
        "</ivy-module>\n"
    )
    cmd = [
        _java(),
        "-jar",
        str(ivy_jar),
        "-settings",
        str(work / "ivysettings.xml"),
        "-cache",
        str(lib_dir / "ivy-cache"),
        "-ivy",
        str(work / "ivy.xml"),
        "-confs",
        "default",
        "-types",
        "jar",
        "bundle",
        "-retrieve",
        str(dest) + "/[artifact]-[revision](-[classifier]).[ext]",
    ]
    _run_resolver(cmd, work, "Ivy")
    shutil.rmtree(work, ignore_errors=True)
    # The retrieved jars are the cache; Ivy's own copy would only double the size.
    shutil.rmtree(lib_dir / "ivy-cache", ignore_errors=True)


def _resolve_with_maven(lib_dir: Path, dest: Path) -> None:
    mvn = shutil.which("mvn")
    if not mvn:
        raise KafkaLocalError("Neither pyspark's Ivy jar nor `mvn` is available to fetch Kafka jars.")
    work = dest.parent / f"{dest.name}.mvn"
    work.mkdir(parents=True, exist_ok=True)
    deps = "\n".join(
        f"    <dependency><groupId>{g}</groupId><artifactId>{a}</artifactId>"
        f"<version>{v}</version></dependency>"
        for g, a, v in _coordinates()
    )
    (work / "pom.xml").write_text(
        '<project xmlns="http://maven.apache.org/POM/4.0.0">\n'
        "  <modelVersion>4.0.0</modelVersion>\n"
        "  <groupId>medallion-assets</groupId>\n"
        "  <artifactId>kafka-local</artifactId>\n"
        "  <version>1</version>\n"
        "  <packaging>pom</packaging>\n"
        f"  <dependencies>\n{deps}\n  </dependencies>\n"
        "</project>\n"
    )
    cmd = [
        mvn,
        "-B",
        "-q",
        "-f",
        str(work / "pom.xml"),
        "org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies",
        f"-DoutputDirectory={dest}",
        "-DincludeScope=runtime",
    ]
    repo = os.environ.get(ENV_MAVEN_REPO)
    if repo:
        cmd.append(f"-DremoteRepositories={repo}")
    _run_resolver(cmd, work, "Maven")
    shutil.rmtree(work, ignore_errors=True)


def _run_resolver(cmd: list[str], cwd: Path, name: str) -> None:
    proc = subprocess.run(
        cmd,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.splitlines()[-40:])
        raise KafkaLocalError(
            f"{name} failed to download Kafka {KAFKA_VERSION} jars (exit {proc.returncode}):\n{tail}"
        )


def ensure_kafka_jars(lib_dir: Path | str | None = None) -> Path:
    """Download Kafka and its runtime dependencies once; return the jar folder.

    Safe to call concurrently from several processes: the first one downloads
    under a file lock into a temporary folder that is renamed into place when
    complete; the others wait and then reuse it.
    """
    lib_dir = _resolve_lib_dir(lib_dir)
    dest = _jar_dir(lib_dir)
    marker = dest / ".complete"
    if marker.exists():
        return dest
    with file_lock(lib_dir / ".lock"):
        if marker.exists():
            return dest
        tmp = lib_dir / f"{dest.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        resolver = (os.environ.get(ENV_RESOLVER) or "auto").lower()
        ivy_jar = _find_ivy_jar() if resolver in ("auto", "ivy") else None
        try:
            if ivy_jar is not None:
                _resolve_with_ivy(ivy_jar, lib_dir, tmp)
            elif resolver == "ivy":
                raise KafkaLocalError("pyspark's Ivy jar (pyspark/jars/ivy-*.jar) was not found.")
            else:
                _resolve_with_maven(lib_dir, tmp)
            main_jar = tmp / f"kafka_{SCALA_BINARY_VERSION}-{KAFKA_VERSION}.jar"
            if not main_jar.exists():
                raise KafkaLocalError(f"Resolution finished but {main_jar.name} is missing in {tmp}.")
            (tmp / ".complete").write_text(f"{KAFKA_VERSION}\n")
            shutil.rmtree(dest, ignore_errors=True)
            os.rename(tmp, dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


# --------------------------------------------------------------------------- #
# Configuration and storage
# --------------------------------------------------------------------------- #


def _config_path(home: Path) -> Path:
    return home / "config" / "server.properties"


def _pid_path(home: Path) -> Path:
    return home / "kafka.pid"


def in_folder(name: str, doc: str) -> property:
    """A read-only path property: the file `name` in the instance's `folder`."""

    def path(self: Security) -> Path:
        return self.folder / name

    return property(path, doc=doc)


@dataclass(frozen=True)
class Security:
    """The SASL_SSL material of a cluster in one folder: a local CA, the brokers' PEM keystore, SCRAM users."""

    folder: Path
    ca = in_folder("ca.pem", "The CA certificate clients and brokers trust.")
    keystore = in_folder("broker.pem", "The brokers' private key and certificate, PEM.")
    credentials = in_folder("credentials.json", "Password of each SCRAM user, JSON, owner-only.")

    def passwords(self) -> dict[str, str]:
        """Password of each SCRAM user (the client user and the brokers' own)."""
        return json.loads(self.credentials.read_text())


@dataclass(frozen=True)
class Node:
    """One KRaft process (combined broker + controller): its home, ports, id and the quorum it is part of."""

    home: Path
    port: int
    controller_port: int
    node_id: int = 1
    voters: str = ""  # node.id@host:port of every controller; empty: this node alone
    brokers: int = 1
    security: Security | None = None  # None: a PLAINTEXT client listener

    @property
    def listener(self) -> str:
        """Name (and protocol) of the listener clients and the other brokers use."""
        return "SASL_SSL" if self.security else "PLAINTEXT"

    @property
    def listeners(self) -> str:
        """The node's listeners setting: the client one, then the controller's."""
        return f"{self.listener}://{HOST}:{self.port},CONTROLLER://{HOST}:{self.controller_port}"


def _sasl_ssl_properties(security: Security) -> dict[str, str]:
    """Broker settings of a SASL_SSL listener: SCRAM for clients and brokers, TLS from the local CA."""
    return {
        "sasl.enabled.mechanisms": SCRAM_MECHANISM,
        "sasl.mechanism.inter.broker.protocol": SCRAM_MECHANISM,
        f"listener.name.sasl_ssl.{SCRAM_MECHANISM.lower()}.sasl.jaas.config": jaas_config(
            SCRAM_MECHANISM, BROKER_USER, security.passwords()[BROKER_USER]
        ),
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(security.keystore),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(security.ca),
        "ssl.client.auth": "none",
    }


def _server_properties(node: Node) -> str:
    """The node's server.properties: replication from the broker count, SASL_SSL when secured."""
    replication, min_insync = replication_for(node.brokers)
    props = {
        "node.id": str(node.node_id),
        "process.roles": "broker,controller",
        "controller.quorum.voters": node.voters or f"{node.node_id}@{HOST}:{node.controller_port}",
        "listeners": node.listeners,
        "advertised.listeners": f"{node.listener}://{HOST}:{node.port}",
        "listener.security.protocol.map": f"CONTROLLER:PLAINTEXT,{node.listener}:{node.listener}",
        "inter.broker.listener.name": node.listener,
        "controller.listener.names": "CONTROLLER",
        "log.dirs": str(node.home / "data"),
        "num.partitions": "3",
        "default.replication.factor": str(replication),
        "auto.create.topics.enable": "true",
        "offsets.topic.replication.factor": str(replication),
        "transaction.state.log.replication.factor": str(replication),
        "transaction.state.log.min.isr": str(min_insync),
        "share.coordinator.state.topic.replication.factor": str(replication),
        "share.coordinator.state.topic.min.isr": str(min_insync),
        "min.insync.replicas": str(min_insync),
        "group.initial.rebalance.delay.ms": "0",
        "message.max.bytes": str(MAX_MESSAGE_BYTES),
        "replica.fetch.max.bytes": str(MAX_MESSAGE_BYTES),
        "num.network.threads": "2",
        "num.io.threads": "4",
        "num.recovery.threads.per.data.dir": "1",
        "log.retention.hours": "168",
        "log.segment.bytes": str(256 * 1024 * 1024),
    }
    if node.security is not None:
        props.update(_sasl_ssl_properties(node.security))
    lines = ["# Generated by medallion_assets.dev.kafka_local; rewritten on every start."]
    lines += [f"{k}={v}" for k, v in props.items()]
    return "\n".join(lines) + "\n"


_LOG4J2_PROPERTIES = """\
# Generated by medallion_assets.dev.kafka_local.
status = warn
name = kafka-local

appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.filePattern = ${sys:kafka.logs.dir}/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3

appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_OUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
appender.console.filter.threshold.type = ThresholdFilter
appender.console.filter.threshold.level = warn

rootLogger.level = info
rootLogger.appenderRef.file.ref = file
rootLogger.appenderRef.console.ref = console

logger.request.name = kafka.request.logger
logger.request.level = warn
"""


def _write_config(node: Node) -> Path:
    """The node's server.properties (owner-only: it may hold the brokers' password) and log settings."""
    config = _config_path(node.home)
    (node.home / "logs").mkdir(parents=True, exist_ok=True)
    write_private(config, _server_properties(node))
    (config.parent / "log4j2.properties").write_text(_LOG4J2_PROPERTIES)
    return config


def _read_properties(path: Path) -> dict[str, str]:
    props: dict[str, str] = {}
    try:
        text = path.read_text()
    except OSError:
        return props
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        props[key.strip()] = value.strip()
    return props


def _configured_port(home: Path) -> int | None:
    """The client port in the home's configuration (the first listener that is not the controller's)."""
    listeners = _read_properties(_config_path(home)).get("listeners", "")
    for listener in listeners.split(","):
        if listener and not listener.startswith("CONTROLLER://"):
            return int(listener.rsplit(":", 1)[1])
    return None


def _cluster_id(home: Path) -> str | None:
    return _read_properties(home / "data" / "meta.properties").get("cluster.id")


def _random_cluster_id() -> str:
    while True:
        value = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not value.startswith("-"):
            return value


def _jvm_args(home: Path, jar_dir: Path) -> list[str]:
    """JVM system properties and classpath shared by the broker and the storage tool."""
    return [
        f"-Dlog4j2.configurationFile={home / 'config' / 'log4j2.properties'}",
        f"-Dkafka.logs.dir={home / 'logs'}",
        "-Djava.awt.headless=true",
        "-cp",
        str(jar_dir / "*"),
    ]


def _format_storage(
    home: Path, jar_dir: Path, config: Path, cluster_id: str | None = None, scram: Sequence[str] = ()
) -> None:
    """Format the KRaft storage once; `scram` are --add-scram credentials written into the first metadata."""
    data = home / "data"
    if (data / "meta.properties").exists():
        return
    shutil.rmtree(data, ignore_errors=True)  # half-formatted leftovers
    cmd = [_java(), "-Xmx256m"] + _jvm_args(home, jar_dir) + [
        "kafka.tools.StorageTool",
        "format",
        "-t",
        cluster_id or _random_cluster_id(),
        "-c",
        str(config),
    ]
    for credential in scram:
        cmd += ["--add-scram", credential]
    proc = subprocess.run(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    if proc.returncode != 0 or not (data / "meta.properties").exists():
        raise KafkaLocalError(
            f"Formatting KRaft storage in {data} failed (exit {proc.returncode}):\n{proc.stdout[-4000:]}"
        )


# --------------------------------------------------------------------------- #
# Processes
# --------------------------------------------------------------------------- #


def _reap(pid: int) -> None:
    """Collect ``pid`` if it is a finished child of this process."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _alive(pid: int) -> bool:
    _reap(pid)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _is_our_broker(pid: int, home: Path) -> bool:
    args = _cmdline(pid)
    return "kafka.Kafka" in args and str(_config_path(home)) in args and _alive(pid)


def _scan_broker_pids(home: Path) -> list[int]:
    """All live broker processes started with this home's server.properties."""
    pids = []
    proc = Path("/proc")
    if not proc.is_dir():
        return pids
    for entry in proc.iterdir():
        if entry.name.isdigit() and _is_our_broker(int(entry.name), home):
            pids.append(int(entry.name))
    return sorted(pids)


def _read_pid_file(home: Path) -> int | None:
    try:
        return int(_pid_path(home).read_text().strip())
    except (OSError, ValueError):
        return None


def broker_pid(home: Path | str | None = None) -> int | None:
    """PID of the running broker of ``home``, or None."""
    home = _resolve_home(home)
    pid = _read_pid_file(home)
    if pid is not None and _is_our_broker(pid, home):
        return pid
    pids = _scan_broker_pids(home)
    return pids[0] if pids else None


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


def _client(settings: Mapping[str, str] | str) -> dict[str, str]:
    """Client settings from a broker list or from settings that may hold security ones."""
    return {"bootstrap.servers": settings} if isinstance(settings, str) else dict(settings)


def _admin(settings: Mapping[str, str] | str):
    from confluent_kafka.admin import AdminClient

    return AdminClient(
        {
            **_client(settings),
            "socket.connection.setup.timeout.ms": 3000,
            "reconnect.backoff.ms": 100,
            "reconnect.backoff.max.ms": 1000,
            # Connection-refused chatter while the broker boots is expected;
            # failures surface as exceptions instead.
            "log_level": 0,
        }
    )


def _metadata(settings: Mapping[str, str] | str, timeout_s: float):
    """Cluster metadata if a broker answers (bootstrap servers or client settings) within ``timeout_s``, else None."""
    from confluent_kafka import KafkaException

    try:
        md = _admin(settings).list_topics(timeout=timeout_s)
    except KafkaException:
        return None
    return md if md.brokers else None


def broker_ready(bootstrap: Mapping[str, str] | str, timeout_s: float = 5) -> bool:
    """True if a broker at ``bootstrap`` (servers, or client settings) answers a metadata request."""
    return _metadata(bootstrap, timeout_s) is not None


def _start_process(home: Path, jar_dir: Path, config: Path) -> int:
    heap = os.environ.get("KAFKA_HEAP_OPTS") or DEFAULT_HEAP_OPTS
    cmd = (
        [_java(), *heap.split()]
        + [
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:InitiatingHeapOccupancyPercent=35",
            "-XX:+ExplicitGCInvokesConcurrent",
        ]
        + _jvm_args(home, jar_dir)
        + ["kafka.Kafka", str(config)]
    )
    out = home / "logs" / "server.out"
    with open(out, "ab") as log:
        log.write(f"\n{_START_MARKER} {time.strftime('%Y-%m-%d %H:%M:%S')} ===\n".encode())
        log.flush()
        proc = subprocess.Popen(
            cmd,
            cwd=home,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    _pid_path(home).write_text(f"{proc.pid}\n")
    return proc.pid


def _terminate(pids: Sequence[int], grace_s: float = STOP_GRACE_S) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in pids:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)


def _wait_ready(
    home: Path, pid: int, settings: Mapping[str, str] | str, cluster_id: str | None, timeout_s: float, brokers: int = 1
) -> None:
    """Wait until the broker answers a metadata request that lists `brokers` brokers of its cluster."""
    deadline = time.monotonic() + timeout_s
    while True:
        if not _alive(pid):
            raise KafkaLocalError(
                f"Kafka broker (pid {pid}) exited during startup.\n{_log_excerpt(home)}"
            )
        md = _metadata(settings, timeout_s=min(2.0, max(0.5, deadline - time.monotonic())))
        if md is not None and (cluster_id is None or md.cluster_id == cluster_id) and len(md.brokers) >= brokers:
            return
        if time.monotonic() >= deadline:
            raise KafkaLocalError(
                f"Kafka broker (pid {pid}) did not answer a metadata request listing {brokers} broker(s) at "
                f"{_client(settings)['bootstrap.servers']} within {timeout_s:.0f} s.\n{_log_excerpt(home)}"
            )
        time.sleep(0.3)


def _refuse_taken_ports(node: Node) -> None:
    """A clear error when another process holds a port the node is about to listen on."""
    for port, what in ((node.port, "broker"), (node.controller_port, "controller")):
        if _port_in_use(port):
            md = _metadata(_bootstrap(port), timeout_s=2)
            who = (
                f"a Kafka broker of another cluster (id {md.cluster_id}) answers there"
                if md is not None
                else "it is not a broker started from this home"
            )
            raise KafkaLocalError(
                f"Cannot start the local Kafka {what} of {node.home}: port {port} on {HOST} is already "
                f"in use by another process ({who}). Stop that process or choose another "
                f"port (--port / --controller-port)."
            )


# --------------------------------------------------------------------------- #
# Public API
# --------------------------------------------------------------------------- #


def ensure_broker(
    home: Path | str | None = None,
    port: int = DEFAULT_PORT,
    topics: Sequence[str] = DEFAULT_TOPICS,
    partitions: int = 3,
    timeout_s: float = 120,
    *,
    lib_dir: Path | str | None = None,
    controller_port: int | None = None,
) -> str:
    """Make sure the broker of ``home`` runs and answers; return its bootstrap servers.

    Idempotent: when the broker of ``home`` is already up nothing is started.
    ``topics`` are created (``partitions`` each, replication factor 1) if missing.
    """
    home = _resolve_home(home)
    controller_port = controller_port if controller_port is not None else port + 1
    bootstrap = _bootstrap(port)
    home.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    with file_lock(home / ".lock"):
        pids = _scan_broker_pids(home)
        pid_file = _read_pid_file(home)
        if pid_file is not None and pid_file not in pids and _is_our_broker(pid_file, home):
            pids.insert(0, pid_file)
        if len(pids) > 1:  # should never happen; keep exactly one
            _terminate(pids[1:])
            pids = pids[:1]

        if pids:
            pid = pids[0]
            running_port = _configured_port(home)
            if running_port is not None and running_port != port:
                raise KafkaLocalError(
                    f"The broker of {home} is already running on port {running_port} (pid {pid}); "
                    f"stop it first (`python -m medallion_assets.dev.kafka_local down --home {home}`) "
                    f"to use port {port}."
                )
            _pid_path(home).write_text(f"{pid}\n")
            _wait_ready(home, pid, bootstrap, _cluster_id(home), timeout_s)
        else:
            _pid_path(home).unlink(missing_ok=True)
            _refuse_taken_ports(Node(home, port, controller_port))
            jar_dir = ensure_kafka_jars(lib_dir)
            config = _write_config(Node(home, port, controller_port))
            _format_storage(home, jar_dir, config)
            pid = _start_process(home, jar_dir, config)
            remaining = max(1.0, timeout_s - (time.monotonic() - started))
            try:
                _wait_ready(home, pid, bootstrap, _cluster_id(home), remaining)
            except BaseException:
                _terminate([pid])
                _pid_path(home).unlink(missing_ok=True)
                raise

    try:
        create_topics(bootstrap, topics, partitions)
    except TopicCreationError as error:
        raise KafkaLocalError(str(error)) from error
    return bootstrap


def _broker_pids(home: Path) -> list[int]:
    """Every live broker process of ``home``: found by its command line, or named by the pid file."""
    pids = _scan_broker_pids(home)
    pid_file = _read_pid_file(home)
    if pid_file is not None and pid_file not in pids and _is_our_broker(pid_file, home):
        pids.append(pid_file)
    return pids


def stop_broker(home: Path | str | None = None) -> bool:
    """Stop the broker of ``home`` (SIGTERM, then SIGKILL after ~20 s); whether one ran."""
    home = _resolve_home(home)
    if not home.exists():
        return False
    with file_lock(home / ".lock"):
        pids = _broker_pids(home)
        if pids:
            _terminate(pids)
        _pid_path(home).unlink(missing_ok=True)
    return bool(pids)


def broker_status(home: Path | str | None = None) -> tuple[int | None, str | None, bool]:
    """(pid, bootstrap, answering) of the broker of ``home``."""
    home = _resolve_home(home)
    pid = broker_pid(home)
    port = _configured_port(home)
    bootstrap = _bootstrap(port) if port is not None else None
    answering = bool(pid and bootstrap and broker_ready(bootstrap, timeout_s=5))
    return pid, bootstrap, answering


# --------------------------------------------------------------------------- #
# A cluster of several nodes, optionally behind SASL_SSL
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Cluster:
    """Nodes started from one home (``node-<i>/`` each), with client ports ``port, port+1, ...``
    and controller ports right after them; ``secured`` puts clients and brokers on SASL_SSL."""

    home: Path
    brokers: int = DEFAULT_BROKERS
    port: int = DEFAULT_CLUSTER_PORT
    secured: bool = False

    @property
    def security(self) -> Security | None:
        """Where the SASL_SSL material lives, for a secured cluster."""
        return Security(self.home / "security") if self.secured else None

    def nodes(self) -> list[Node]:
        """Every node, node ids 1..brokers; all of them vote in the KRaft quorum."""
        ports = {i: (self.port + i - 1, self.port + self.brokers + i - 1) for i in range(1, self.brokers + 1)}
        voters = ",".join(f"{i}@{HOST}:{controller}" for i, (_, controller) in ports.items())
        return [
            Node(self.home / f"node-{i}", client, controller, i, voters, self.brokers, self.security)
            for i, (client, controller) in ports.items()
        ]

    @property
    def bootstrap(self) -> str:
        """Every node's client address."""
        return ",".join(_bootstrap(node.port) for node in self.nodes())

    def settings(self, bootstrap: str | None = None) -> dict[str, str]:
        """librdkafka settings of the client user (holds its password: never log them)."""
        settings = {"bootstrap.servers": bootstrap or self.bootstrap}
        if self.security is not None:
            settings.update(
                {
                    "security.protocol": "SASL_SSL",
                    "sasl.mechanism": SCRAM_MECHANISM,
                    "sasl.username": CLIENT_USER,
                    "sasl.password": self.security.passwords()[CLIENT_USER],
                    "ssl.ca.location": str(self.security.ca),
                }
            )
        return settings


def _openssl(*args: str, cwd: Path) -> None:
    """Run openssl in the security folder; files it writes are the owner's only."""
    proc = subprocess.run(
        ["openssl", *args], cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        preexec_fn=lambda: os.umask(0o077),
    )
    if proc.returncode != 0:
        raise KafkaLocalError(f"openssl {args[0]} failed (exit {proc.returncode}): {proc.stderr[-2000:]}")


def _ensure_security(security: Security) -> None:
    """Generate once: a CA, a broker certificate it signs for 127.0.0.1, and each SCRAM user's password."""
    folder = security.folder
    if all(path.exists() for path in (security.ca, security.keystore, security.credentials)):
        return
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    days = str(CERT_DAYS)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", days,
             "-subj", "/CN=medallion local Kafka CA", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=folder)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "broker.key", "-out", "broker.csr",
             "-subj", f"/CN={HOST}", cwd=folder)
    (folder / "broker.ext").write_text(f"subjectAltName=IP:{HOST},DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n")
    _openssl("x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial",
             str(secrets.randbits(63)), "-days", days, "-extfile", "broker.ext", "-out", "broker.crt", cwd=folder)
    write_private(security.keystore, (folder / "broker.key").read_text() + (folder / "broker.crt").read_text())
    security.ca.chmod(0o644)  # the certificate is public; clients read it
    for leftover in ("ca.key", "broker.key", "broker.csr", "broker.crt", "broker.ext"):
        (folder / leftover).unlink()
    passwords = {user: secrets.token_urlsafe(24) for user in (CLIENT_USER, BROKER_USER)}
    write_private(security.credentials, json.dumps(passwords, indent=2) + "\n")


def _scram_credentials(security: Security) -> list[str]:
    """--add-scram values of every user, salted here so no password shows on a command line."""
    values = []
    for user, password in security.passwords().items():
        salt = secrets.token_bytes(16)
        salted = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, SCRAM_ITERATIONS)
        encoded = base64.b64encode(salt).decode(), base64.b64encode(salted).decode()
        values.append(
            f'{SCRAM_MECHANISM}=[name={user},iterations={SCRAM_ITERATIONS},salt="{encoded[0]}",saltedpassword="{encoded[1]}"]'
        )
    return values


def _chosen_cluster_id(cluster: Cluster) -> str:
    """The id every node of the cluster is formatted with (chosen once)."""
    path = cluster.home / "cluster.id"
    if not path.exists():
        path.write_text(_random_cluster_id() + "\n")
    return path.read_text().strip()


def _start_node(node: Node, cluster_id: str, scram: Sequence[str], lib_dir: Path | str | None) -> int:
    """Configure, format (once) and start one node; its pid."""
    _pid_path(node.home).unlink(missing_ok=True)
    _refuse_taken_ports(node)
    jar_dir = ensure_kafka_jars(lib_dir)
    config = _write_config(node)
    _format_storage(node.home, jar_dir, config, cluster_id, scram)
    return _start_process(node.home, jar_dir, config)


def ensure_cluster(
    cluster: Cluster,
    topics: Sequence[str] = DEFAULT_TOPICS,
    partitions: int = 3,
    timeout_s: float = 120,
    lib_dir: Path | str | None = None,
) -> dict[str, str]:
    """Start every node of the cluster that does not run, wait for all, create topics; the client settings.

    Idempotent: a node already running is kept. Topics get replication_for the broker count.
    """
    home = cluster.home
    home.mkdir(parents=True, exist_ok=True)
    started_at = time.monotonic()
    with file_lock(home / ".lock"):
        if cluster.security is not None:
            _ensure_security(cluster.security)
        cluster_id = _chosen_cluster_id(cluster)
        scram = _scram_credentials(cluster.security) if cluster.security is not None else []
        pids, started = {}, []
        for node in cluster.nodes():
            pid = broker_pid(node.home)
            if pid is not None and _read_properties(_config_path(node.home)).get("listeners") != node.listeners:
                raise KafkaLocalError(
                    f"Node {node.node_id} of {home} runs (pid {pid}) with other listeners than asked for; stop the "
                    f"cluster first (`python -m medallion_assets.dev.kafka_local down --home {home}`)."
                )
            if pid is None:
                pid = _start_node(node, cluster_id, scram, lib_dir)
                started.append(pid)
            pids[node] = pid
        try:
            for node, pid in pids.items():
                remaining = max(1.0, timeout_s - (time.monotonic() - started_at))
                _wait_ready(node.home, pid, cluster.settings(_bootstrap(node.port)), cluster_id, remaining, cluster.brokers)
        except BaseException:
            _terminate(started)
            raise
    settings = cluster.settings()
    try:
        wait_for_leaders(_admin(settings))  # after a restart: the topics it already had serve again
        create_topics(settings, topics, partitions)
    except TopicCreationError as error:
        raise KafkaLocalError(str(error)) from error
    return settings


def node_homes(home: Path | str) -> list[Path]:
    """The node homes of a cluster home, in node id order (none for a single broker's home)."""
    return sorted(Path(home).glob("node-*"), key=lambda path: int(path.name.split("-", 1)[1]))


def stop_cluster(home: Path | str) -> bool:
    """Stop every node of the cluster home at once (SIGTERM, then SIGKILL); whether any ran."""
    home = Path(home)
    if not home.exists():
        return False
    with file_lock(home / ".lock"):
        pids = [pid for node in node_homes(home) for pid in _broker_pids(node)]
        _terminate(pids)
        for node in node_homes(home):
            _pid_path(node).unlink(missing_ok=True)
    return bool(pids)


def cluster_status(cluster: Cluster) -> str | None:
    """Where the cluster answers, when every node runs and lists every broker."""
    if any(broker_pid(node.home) is None for node in cluster.nodes()):
        return None
    md = _metadata(cluster.settings(), timeout_s=5)
    if md is None or len(md.brokers) < cluster.brokers:
        return None
    return f"{cluster.brokers} brokers at {cluster.bootstrap}"


# --------------------------------------------------------------------------- #
# CLI
# --------------------------------------------------------------------------- #


def _parse_topics(value: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in value.split(",") if t.strip())


def _single_broker(args: argparse.Namespace) -> bool:
    """Whether the command is about the one plaintext broker (the default) rather than a cluster."""
    return args.brokers == 1 and args.security == "plaintext"


def _cluster(args: argparse.Namespace) -> Cluster:
    """The cluster the options name."""
    home = _resolve_home(args.home) if args.home is not None else DEFAULT_CLUSTER_HOME
    return Cluster(home, args.brokers, args.port or DEFAULT_CLUSTER_PORT, args.security == "sasl_ssl")


def _up(args: argparse.Namespace) -> list[str]:
    """Start what the options ask for; the environment lines of its clients."""
    if _single_broker(args):
        bootstrap = ensure_broker(
            home=args.home, port=args.port or DEFAULT_PORT, topics=args.topics, partitions=args.partitions,
            timeout_s=args.timeout, lib_dir=args.lib_dir, controller_port=args.controller_port,
        )
        return environment_lines({"bootstrap.servers": bootstrap})
    settings = ensure_cluster(_cluster(args), args.topics, args.partitions, args.timeout, args.lib_dir)
    return environment_lines(settings)


def _down(args: argparse.Namespace) -> bool:
    """Stop the broker, or every node when the home is a cluster's."""
    home = args.home if args.home is not None else (DEFAULT_HOME if _single_broker(args) else DEFAULT_CLUSTER_HOME)
    return stop_cluster(home) if node_homes(home) else stop_broker(home)


def _where(args: argparse.Namespace) -> str | None:
    """Where the broker or cluster answers, if it does."""
    if _single_broker(args):
        pid, bootstrap, answering = broker_status(args.home)
        return f"(pid {pid}) at {bootstrap}" if pid and answering else None
    return cluster_status(_cluster(args))


def main(argv: Sequence[str] | None = None) -> int:
    """up | down | status of the local broker or cluster."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--home", type=Path, default=None,
        help=f"broker or cluster home (default {DEFAULT_HOME}, a cluster's {DEFAULT_CLUSTER_HOME})",
    )
    common.add_argument(
        "--lib-dir", type=Path, default=None, help=f"jar cache shared by all homes (default {DEFAULT_LIB_DIR})"
    )
    common.add_argument(
        "--port", type=int, default=None,
        help=f"client port (default {DEFAULT_PORT}); a cluster's first client port (default {DEFAULT_CLUSTER_PORT}), "
        "its other nodes take the next ones, then the controllers",
    )
    common.add_argument(
        "--controller-port", type=int, default=None, help="KRaft controller port of a single broker (default port+1)"
    )
    common.add_argument(
        "--brokers", type=int, default=1, choices=range(1, 10), metavar="N",
        help="KRaft nodes, each broker and controller; topics get replication factor min(N, 3) (default 1)",
    )
    common.add_argument(
        "--security", choices=("plaintext", "sasl_ssl"), default="plaintext",
        help="client listener: plaintext, or sasl_ssl (SCRAM-SHA-512 users and TLS from a CA made in the home)",
    )
    common.add_argument("--partitions", type=int, default=3, help="partitions of created topics")
    common.add_argument(
        "--topics",
        type=_parse_topics,
        default=DEFAULT_TOPICS,
        help="comma-separated topics to create (default: %s)" % ",".join(DEFAULT_TOPICS),
    )
    common.add_argument("--timeout", type=float, default=120, help="startup timeout in seconds")

    parser = argparse.ArgumentParser(
        prog="python -m medallion_assets.dev.kafka_local",
        description="Run a local Kafka (KRaft): one broker, or a cluster. Options follow the command.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", parents=[common], help="start (if needed), create topics, print export lines for clients")
    sub.add_parser("down", parents=[common], help="stop the broker, or every node of the cluster")
    sub.add_parser("status", parents=[common], help="exit 0 if the broker or cluster runs and answers, 1 otherwise")
    args = parser.parse_args(argv)
    try:
        return run_command(args.command, lambda: _up(args), lambda: _down(args), lambda: _where(args))
    except KafkaLocalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
