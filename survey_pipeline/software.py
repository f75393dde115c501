"""The software a process runs with: Python and the versions of the packages that shape the numbers.

Recorded in every stage's settings record and the run manifest, so the method note
names what made the numbers, not what happens to be installed when the report runs.
"""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Any

PACKAGES = (
    "survey-pipeline",
    "numpy",
    "scipy",
    "pandas",
    "pyarrow",
    "pyreadstat",
    "statsmodels",
    "pandera",
    "great_expectations",
    "matplotlib",
    "xlsxwriter",
    "dvc",
)


def software_versions() -> dict[str, Any]:
    """The Python and package versions of this process (contract `Software`), for manifests and stage records."""
    return {"python": platform.python_version(), "packages": {name: _version(name) for name in PACKAGES}}


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None
