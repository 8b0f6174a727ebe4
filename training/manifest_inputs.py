"""Training data comes only through manifests: load, check the stage, re-hash every shard.

A shard whose bytes differ from what its manifest says is a user error (the data is not what the
run claims to train on), so the run stops before any work with one message naming the shard.
``ConsumedManifest`` is what the run records about each input (path, name, stage, hashes).
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

from corpora_manifests.errors import UserError

_ALLOWED = {"cpt": {"cpt"}, "sft": {"sft_stage1", "sft_stage2"}, "distill": {"distill_logits"}}


@dataclass
class ConsumedManifest:
    path: str
    name: str
    stage: str
    split: str | None
    manifest_sha256: str
    shards: list[dict[str, Any]] = field(default_factory=list)  # path, sha256, records, tokens
    records: int = 0
    tokens: int = 0

    @property
    def content_key(self) -> str:
        """Identity of the data used: the manifest file's hash and the split read from it."""
        return hashlib.sha256(f"{self.manifest_sha256}|{self.split}".encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ManifestInput:
    directory: Path
    manifest: Any  # corpora_manifests.models.Manifest
    split: str | None
    consumed: ConsumedManifest

    def iter_rows(self, columns: list[str] | None = None) -> Iterator[dict[str, Any]]:
        from corpora_manifests.shards import iter_rows

        return iter_rows(self.directory, self.manifest, split=self.split, columns=columns)


def open_manifest(path: str | Path, kind: str, split: str | None = "train", verify: bool = True) -> ManifestInput:
    """Load a manifest for a ``kind`` ("cpt" | "sft") stage and verify its shards' hashes."""
    from corpora_manifests.models import MANIFEST_FILENAME, ManifestError, load_manifest
    from corpora_manifests.shards import sha256_file, verify_manifest

    p = Path(path)
    directory = p.parent if p.is_file() else p
    try:
        manifest = load_manifest(directory)
    except ManifestError as e:
        raise UserError(f"training input {path}: {e}") from None
    if manifest.stage not in _ALLOWED[kind]:
        raise UserError(
            f"manifest {path} has stage {manifest.stage!r}; a {kind} run reads only "
            f"{sorted(_ALLOWED[kind])} manifests (eval data never enters training)")
    use_split = split if (split and manifest.splits) else None
    if use_split and use_split not in manifest.splits:
        raise UserError(f"manifest {path} has no split {use_split!r} (it has {sorted(manifest.splits)})")
    if verify:
        problems = verify_manifest(directory, manifest)
        if problems:
            shown = "; ".join(str(x) for x in problems[:3])
            more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
            raise UserError(f"manifest {path} failed hash verification: {shown}{more}")
    shards = [s for s in manifest.shards if use_split is None or s.split == use_split]
    consumed = ConsumedManifest(
        path=str(directory),
        name=manifest.name,
        stage=manifest.stage,
        split=use_split,
        manifest_sha256=sha256_file(directory / MANIFEST_FILENAME),
        shards=[{"path": s.path, "sha256": s.sha256, "records": s.records, "tokens": s.tokens} for s in shards],
        records=sum(s.records for s in shards),
        tokens=sum(s.tokens for s in shards),
    )
    return ManifestInput(directory=directory, manifest=manifest, split=use_split, consumed=consumed)
