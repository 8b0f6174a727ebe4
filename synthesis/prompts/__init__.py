"""Versioned Chinese prompt templates (``<name>.md``); see ``synthesis.prompting``."""
