"""Fetch the pinned provider package and cache the schema the checker reads (`make provider-schema`).

``npm pack`` downloads the exact tarball (about 32 MB) without installing it or running its scripts; its
sha512 must equal the pinned integrity. Only ``package/package.json`` (which names the provider version
the bindings were generated from) and ``package/.jsii`` are read, straight from the tarball, and the
tarball is deleted: the cache holds the extract alone (about 3 MB). Standard library only, so that the
Makefile can run it before the project's environment exists.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

from infra.lint.provider_schema.jsii import build_schema
from infra.lint.provider_schema.pin import PIN_FILE, SCHEMA_FILE, Pin, read_pin

ASSEMBLY_MEMBER = "package/.jsii"
MANIFEST_MEMBER = "package/package.json"
NPM = "npm"
HASH_CHUNK = 1 << 20
CACHE_FILE_MODE = 0o644


class FetchError(RuntimeError):
    """The package could not be fetched, or is not the one pinned."""


def _integrity(path: Path) -> str:
    digest = hashlib.sha512()
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return "sha512-" + base64.b64encode(digest.digest()).decode("ascii")


def download(pin: Pin, *, directory: Path) -> Path:
    """The pinned tarball in ``directory``, its integrity checked against the pin."""
    command = [NPM, "pack", pin.spec, "--json", "--ignore-scripts"]
    try:
        result = subprocess.run(command, cwd=directory, capture_output=True, text=True, check=False)
    except FileNotFoundError as error:
        raise FetchError(f"{NPM} is not on PATH: it fetches {pin.spec} (install Node.js with npm)") from error
    if result.returncode != 0:
        output = "\n".join(part.strip() for part in (result.stdout, result.stderr) if part.strip())
        raise FetchError(f"{' '.join(command)} failed ({result.returncode}):\n{output}")
    tarball = directory / json.loads(result.stdout)[0]["filename"]
    if (actual := _integrity(tarball)) != pin.integrity:
        raise FetchError(f"{tarball.name}: integrity {actual} is not the pinned {pin.integrity} ({PIN_FILE})")
    return tarball


def _member(archive: tarfile.TarFile, name: str) -> Any:
    handle = archive.extractfile(name)
    if handle is None:
        raise FetchError(f"{archive.name}: no file {name}")
    with handle:
        return json.load(handle)


def extract(tarball: Path, *, pin: Pin) -> dict[str, Any]:
    """The compact schema of the assembly in ``tarball``, stamped with the pin it was built from."""
    with tarfile.open(tarball, "r:gz") as archive:
        manifest = _member(archive, MANIFEST_MEMBER)
        if f"{manifest['name']}@{manifest['version']}" != pin.spec:
            raise FetchError(f"{tarball.name} holds {manifest['name']}@{manifest['version']}, not {pin.spec}")
        provider_version = manifest["cdktf"]["provider"]["version"]
        schema = build_schema(_member(archive, ASSEMBLY_MEMBER), provider_version=provider_version)
    schema["pin"] = pin.spec
    return schema


def write_atomically(schema: dict[str, Any], *, path: Path) -> None:
    """Readers (a test session, a concurrent `make lint`) see the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False, encoding="utf-8") as handle:
        json.dump(schema, handle, separators=(",", ":"), sort_keys=True)
    os.chmod(handle.name, CACHE_FILE_MODE)
    os.replace(handle.name, path)


def fetch(*, pin: Pin, output: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=output.parent, prefix="download-") as directory:
        tarball = download(pin, directory=Path(directory))
        downloaded = time.monotonic()
        size = tarball.stat().st_size
        schema = extract(tarball, pin=pin)
    write_atomically(schema, path=output)
    print(
        f"{pin.spec} (hashicorp/aws {schema['provider_version']}): {size / 1e6:.1f} MB fetched in "
        f"{downloaded - started:.1f} s, {len(schema['resources'])} resource and {len(schema['data_sources'])} "
        f"data source types extracted to {os.path.relpath(output)} ({output.stat().st_size / 1e6:.1f} MB) in "
        f"{time.monotonic() - downloaded:.1f} s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pin-file", type=Path, default=PIN_FILE)
    parser.add_argument("--output", type=Path, default=SCHEMA_FILE)
    args = parser.parse_args(argv)
    try:
        fetch(pin=read_pin(path=args.pin_file), output=args.output)
    except FetchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
