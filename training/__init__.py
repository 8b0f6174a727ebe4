"""Training from manifests: CPT and domain-progressive (curriculum) SFT with transformers + DeepSpeed.

Data flow: manifests (verified) → token cache → packing → Trainer (ZeRO-3) → stage weights → next
stage. Entry point: ``training.curriculum.run_training(config) -> Path``. Importing this package
imports nothing heavy and does no I/O. See docs/training.md.
"""
