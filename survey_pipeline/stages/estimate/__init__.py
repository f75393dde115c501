"""Estimate: the indicators, wave changes and distributions (`stage`), small-area estimates (`small_area`)."""
