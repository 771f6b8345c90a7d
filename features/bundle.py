"""Opening a bundle directory: every file present, every sha256 matching, the manifest readable.

Used by the service at start-up and hot reload, and by export's own validation. Any problem raises
:class:`BundleError` naming it; there is no silent fallback.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from features.manifest import BundleManifest

MANIFEST_FILE = "manifest.json"


class BundleError(RuntimeError):
    """The bundle is missing, corrupt or inconsistent; the message names the problem."""


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class BundleFiles:
    root: Path
    manifest: BundleManifest

    @property
    def encoder_path(self) -> Path:
        return self.root / self.manifest.encoder.file

    @property
    def head_path(self) -> Path:
        return self.root / self.manifest.head.file

    @property
    def tokenizer_path(self) -> Path:
        return self.root / self.manifest.text.tokenizer_file


def open_bundle(root: str | Path, verify_hashes: bool = True) -> BundleFiles:
    root = Path(root)
    if not root.is_dir():
        raise BundleError(f"bundle directory not found: {root}")
    manifest_path = root / MANIFEST_FILE
    if not manifest_path.is_file():
        raise BundleError(f"bundle {root} has no {MANIFEST_FILE}")
    try:
        manifest = BundleManifest.read(manifest_path)
    except ValidationError as exc:
        raise BundleError(f"bundle {root}: invalid {MANIFEST_FILE}: {exc}") from exc
    except ValueError as exc:
        raise BundleError(f"bundle {root}: unreadable {MANIFEST_FILE}: {exc}") from exc
    required = {manifest.encoder.file, manifest.head.file, manifest.text.tokenizer_file}
    missing_hash = sorted(required - manifest.files.keys())
    if missing_hash:
        raise BundleError(f"bundle {root}: manifest lists no sha256 for {', '.join(missing_hash)}")
    for name, expected in sorted(manifest.files.items()):
        path = root / name
        if not path.is_file():
            raise BundleError(f"bundle {root}: missing file {name}")
        if verify_hashes:
            actual = sha256_file(path)
            if actual != expected:
                raise BundleError(
                    f"bundle {root}: sha256 mismatch for {name} (manifest {expected[:12]}…, file {actual[:12]}…)"
                )
    return BundleFiles(root=root, manifest=manifest)
