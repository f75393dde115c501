"""Ingest: read the raw wave files (.sav, CSV, Parquet) whole or refuse them (`stage`, `sav_structure`)."""
