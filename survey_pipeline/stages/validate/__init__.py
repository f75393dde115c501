"""Validate: every ingested row valid or quarantined with a reason (`stage`; `expectations` for GX)."""
