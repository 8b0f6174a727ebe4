"""Export a manifest to other ecosystems: LLaMA-Factory's dataset_info.json and HF datasets."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .models import Manifest, load_manifest


def _data_files(manifest: Manifest, root: Path) -> dict[str, list[str]]:
    if manifest.splits:
        return {split: [str((root / p).resolve()) for p in info.shards] for split, info in manifest.splits.items()}
    return {"train": [str(p.resolve()) for p in manifest.shard_paths(root)]}


def to_llamafactory(directory: str | Path, name: str | None = None) -> dict[str, Any]:
    """Entries for LLaMA-Factory's ``dataset_info.json``, one per split (``name`` or ``name_<split>``).

    SFT stages use the sharegpt format on our ``messages`` column (role/content tags);
    CPT uses the pre-training form (``columns.prompt = text``). ``file_name`` is the shard
    directory of the split, which holds only parquet files.
    """
    root = Path(directory).resolve()
    manifest = load_manifest(root)
    name = name or manifest.name
    entries: dict[str, Any] = {}
    for split, files in _data_files(manifest, root).items():
        parents = {str(Path(f).parent) for f in files}
        file_name = parents.pop() if len(parents) == 1 else files[0]
        if manifest.stage == "cpt":
            entry: dict[str, Any] = {"file_name": file_name, "formatting": "alpaca", "columns": {"prompt": "text"}}
        else:
            entry = {
                "file_name": file_name,
                "formatting": "sharegpt",
                "columns": {"messages": "messages"},
                "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                         "assistant_tag": "assistant", "system_tag": "system"},
            }
        key = name if (len(manifest.splits) <= 1 and split == "train") else f"{name}_{split}"
        entries[key] = entry
    return entries


def to_load_dataset_call(directory: str | Path) -> str:
    """The Python call that loads this manifest's shards with ``datasets``."""
    root = Path(directory).resolve()
    files = _data_files(load_manifest(root), root)
    return f"datasets.load_dataset('parquet', data_files={files!r})"


def load_hf_dataset(directory: str | Path, verify: bool = True):
    """Load the shards with ``datasets`` after re-hashing them (the data is what the manifest says)."""
    import datasets

    from .shards import verify_manifest

    root = Path(directory).resolve()
    if verify and (problems := verify_manifest(root)):
        raise ValueError("manifest verification failed: " + "; ".join(map(str, problems)))
    return datasets.load_dataset("parquet", data_files=_data_files(load_manifest(root), root))
