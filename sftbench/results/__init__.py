"""Results: the typed Record, the JSONL store, the environment fingerprint, record selection."""
