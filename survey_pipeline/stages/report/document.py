"""A small document model shared by the HTML and Markdown renderers.

The report and the method note are built once as a `Document` (pure data) and
rendered twice, so both formats always say the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from survey_pipeline.stages.report.tables import AnnualTable


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2
    anchor: str = ""


# The report's two pages, named without suffix: each is written as .html and .md (and the report as .docx).
REPORT_PAGE, METHOD_NOTE_PAGE = "jaarverslag", "onderzoeksverantwoording"


@dataclass(frozen=True)
class Link:
    """A link to another page of the report, named without suffix (e.g. "jaarverslag"): each renderer
    points to its own format of that page (jaarverslag.html from HTML, jaarverslag.md from Markdown)."""

    label: str
    page: str
    anchor: str = ""


@dataclass(frozen=True)
class Paragraph:
    text: str
    link: Link | None = None  # printed after the text


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    """A plain table of text cells; `numeric` marks right-aligned columns."""

    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""
    numeric: tuple[bool, ...] = ()


@dataclass(frozen=True)
class Image:
    src: str  # relative to the document
    alt: str
    caption: str = ""


@dataclass(frozen=True)
class AnnualTableBlock:
    table: AnnualTable


Block = Heading | Paragraph | Bullets | Table | Image | AnnualTableBlock


@dataclass(frozen=True)
class Document:
    title: str
    blocks: tuple[Block, ...] = field(default_factory=tuple)
    subtitle: str = ""
