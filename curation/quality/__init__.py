"""Character-based quality scoring and filtering for Chinese text (datatrove steps)."""
