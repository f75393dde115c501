"""Weight: rake (or post-stratify) each wave to its population margins, or refuse (`stage`)."""
