"""Pipelines: compositions of curation steps run on datatrove executors."""
