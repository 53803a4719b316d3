"""A local S3-compatible object store: SeaweedFS (`weed mini`) on 127.0.0.1, with the warehouse bucket.

SeaweedFS is built once per machine from the Go module proxy into the user's cache directory
(`go build`, about 5 minutes on 2 cores; the module cache needs about 2 GB). Its S3 API enforces
credentials generated on the first `up` and kept, readable by the owner only, in the store's home.
Every other port it serves follows the S3 port (+1..+6, their gRPC ports +10000).

CLI::

    python -m medallion_assets.dev.object_store up|down|status [--port N] [--home DIR]

`up` is idempotent and prints `export MEDALLION_WAREHOUSE=s3a://...`, `MEDALLION_S3_ENDPOINT` and the
credentials (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`), for `eval "$(...)"`; `down` stops only
the server it started (by the pid in its home).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from medallion_assets.dev.processes import (
    HOST,
    HomedService,
    ServiceError,
    launch,
    port_answers,
    service_main,
    service_parser,
    stop,
    write_private,
)
from medallion_assets.paths import REPO_ROOT

DEFAULT_PORT = 8333
DEFAULT_HOME = REPO_ROOT / ".cache" / "object-store"
BUCKET = "warehouse"
SEAWEEDFS_MODULE = "github.com/seaweedfs/seaweedfs"
SEAWEEDFS_VERSION = "v0.0.0-20261109003541-7506e5f91cd6"
START_TIMEOUT_S = 120.0
BUILD_TIMEOUT_S = 3600.0


def binary_cache() -> Path:
    """Where the built `weed` lives: outside any clone, so a machine builds it once."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "medallion_assets" / "seaweedfs" / SEAWEEDFS_VERSION


def ensure_binary() -> Path:
    """The `weed` binary, built from the Go module proxy on first use."""
    target = binary_cache() / "weed"
    if target.is_file():
        return target
    go = shutil.which("go")
    if go is None:
        raise ServiceError("Building SeaweedFS needs the Go toolchain (`go`) on PATH.")
    print(f"Building SeaweedFS {SEAWEEDFS_VERSION} into {target.parent} (once per machine, about 5 minutes)...", file=sys.stderr)
    download = subprocess.run(
        [go, "mod", "download", "-json", f"{SEAWEEDFS_MODULE}@{SEAWEEDFS_VERSION}"], capture_output=True, text=True, timeout=BUILD_TIMEOUT_S
    )
    if download.returncode != 0:
        raise ServiceError(f"go mod download {SEAWEEDFS_MODULE} failed:\n{download.stdout[-2000:]}{download.stderr[-2000:]}")
    module = Path(json.loads(download.stdout)["Dir"])
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        source = Path(work) / "src"
        shutil.copytree(module, source)  # the module cache is read-only, and its go.mod has replace directives
        for path in source.rglob("*"):
            path.chmod(path.stat().st_mode | 0o200)
        built = subprocess.run(
            [go, "build", "-o", str(Path(work) / "weed"), "./weed"],
            cwd=source, env={**os.environ, "GOFLAGS": "-mod=mod"}, timeout=BUILD_TIMEOUT_S,
        )
        if built.returncode != 0:
            raise ServiceError(f"go build of SeaweedFS failed (exit {built.returncode})")
        (Path(work) / "weed").replace(target)
    return target


@dataclass(frozen=True)
class Store(HomedService, process="weed", scheme="http"):
    """Where one store's data, credentials, pid file and log live, and its S3 port (`url`: the S3 endpoint)."""

    def credentials(self) -> dict[str, str]:
        """The store's access key and secret, generated on first use (file mode 0600)."""
        path = self.home / "credentials.json"
        if not path.exists():
            fresh = {"AWS_ACCESS_KEY_ID": f"medallion{secrets.token_hex(4)}", "AWS_SECRET_ACCESS_KEY": secrets.token_urlsafe(24)}
            write_private(path, json.dumps(fresh))
        return json.loads(path.read_text())

    def environment(self) -> list[str]:
        """The lines that point the pipeline at this store."""
        settings = {"MEDALLION_WAREHOUSE": f"s3a://{BUCKET}/medallion", "MEDALLION_S3_ENDPOINT": self.url, **self.credentials()}
        return [f"{key}={value}" for key, value in settings.items()]


def server_command(binary: Path, store: Store) -> list[str]:
    """`weed mini` on 127.0.0.1: every port derived from the S3 port, extras (WebDAV, Iceberg, Lance) off."""
    base = store.port
    ports = {"master.port": base + 1, "volume.port": base + 2, "filer.port": base + 3, "admin.port": base + 4, "debug.port": base + 5}
    args = [str(binary), "mini", f"-dir={store.home / 'data'}", f"-ip={HOST}", f"-ip.bind={HOST}", f"-s3.port={base}"]
    args += [f"-{name}={port}" for name, port in ports.items()]
    args += ["-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0", "-admin.port.legacy=0", f"-bucket={BUCKET}"]
    return args


def bucket_ready(store: Store) -> bool:
    """Whether the S3 API answers, with these credentials, that the warehouse bucket exists."""
    from pyarrow import fs

    credentials = store.credentials()
    s3 = fs.S3FileSystem(
        access_key=credentials["AWS_ACCESS_KEY_ID"], secret_key=credentials["AWS_SECRET_ACCESS_KEY"],
        endpoint_override=f"{HOST}:{store.port}", scheme="http", region="us-east-1", connect_timeout=2, request_timeout=5,
    )
    try:
        return s3.get_file_info(BUCKET).type == fs.FileType.Directory
    except OSError:
        return False


def up(store: Store, timeout_s: float = START_TIMEOUT_S) -> list[str]:
    """Start the store unless it already runs; its environment lines once the bucket answers."""
    if store.serving():
        return store.environment()
    binary = ensure_binary()
    (store.home / "data").mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **store.credentials()}
    launch(store, server_command(binary, store), env, lambda: port_answers(store.port) and bucket_ready(store), "SeaweedFS S3", timeout_s)
    return store.environment()


def down(store: Store) -> bool:
    """Stop the store this home started; whether one was running. Its data stays in its home."""
    return stop(store.pid_file)


def main(argv: list[str] | None = None) -> int:
    """up | down | status."""
    parser = service_parser(__spec__.name, __doc__, (DEFAULT_PORT, f"S3 port on {HOST}; the next 5 ports too"), (DEFAULT_HOME, "data, credentials, pid file, log"))
    return service_main(argv, parser, Store, up, down, lambda store: store.url)


if __name__ == "__main__":
    sys.exit(main())
