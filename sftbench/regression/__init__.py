"""Regression: case summaries, baseline files, statistics and verdicts, the gate workflow."""
