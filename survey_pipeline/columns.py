"""Column names the stages share, beside the survey's own names (which come from the spec).

One module the stages import instead of importing each other.
"""

ORIGIN_COLUMNS = ("source_file", "source_row", "file_wave")
"""Where a row came from: the raw file's name, its 1-based data row there, the wave the file name gives."""

BASE_WEIGHT = "base_weight"
"""Optional design (base) weights in a raw file, carried through validation to the weight stage."""
