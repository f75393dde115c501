"""Read the annual-report table, its footnotes, notes and images back out of rendered HTML."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class ParsedReport:
    has_table: bool = False
    rows: dict[str, list[str]] = field(default_factory=dict)  # indicator id -> label cell + value cells
    row_notes: dict[str, list[list[str]]] = field(default_factory=dict)  # indicator id -> note keys per value cell
    headers: list[str] = field(default_factory=list)
    footnotes: list[str] = field(default_factory=list)
    unmarked: str = ""  # the base of rows without a footnote
    notes: list[str] = field(default_factory=list)
    images: list[dict[str, str]] = field(default_factory=list)
    # every row of the annual table in order: (class of the row, text of its first cell)
    lines: list[tuple[str, str]] = field(default_factory=list)
    remarks: list[str] = field(default_factory=list)  # sentences under the table (waves left out)


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.out = ParsedReport()
        self._in_table = False
        self._row: str | None = None
        self._cell: list[str] | None = None
        self._sup: list[str] | None = None
        self._cell_notes: list[str] = []
        self._list: str | None = None
        self._item: list[str] | None = None
        self._header: list[str] | None = None
        self._unmarked: list[str] | None = None
        self._line: list[str] | None = None  # first-cell text of the current annual-table row
        self._cells_in_line = 0
        self._remark: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if self._in_table and tag == "tr":
            self.out.lines.append((attrs.get("class") or "", ""))
            self._line, self._cells_in_line = [], 0
        if self._in_table and tag in ("td", "th"):
            self._cells_in_line += 1
        if tag == "table" and attrs.get("id") == "jaarverslag-tabel":
            self.out.has_table, self._in_table = True, True
        elif self._in_table and tag == "tr" and "data-indicator" in attrs:
            self._row = attrs["data-indicator"]
            self.out.rows[self._row], self.out.row_notes[self._row] = [], []
        elif self._in_table and tag == "th" and "year" in attrs.get("class", ""):
            self._header = []
        elif self._row and tag == "td":
            self._cell, self._cell_notes = [], []
        elif self._cell is not None and tag == "sup":
            self._sup = []
        elif tag == "p" and "remark" in (attrs.get("class") or ""):
            self._remark = []
        elif tag == "p" and attrs.get("id") == "basis-zonder-voetnoot":
            self._unmarked = []
        elif tag in ("ol", "ul") and attrs.get("id") in ("voetnoten", "toelichting"):
            self._list = attrs["id"]
        elif self._list and tag == "li":
            self._item = []
        elif tag == "img":
            self.out.images.append({k: v or "" for k, v in attrs.items()})
        elif tag == "br" and self._header is not None:
            self._header.append(" ")

    def handle_endtag(self, tag):
        if self._in_table and tag in ("td", "th") and self._line is not None and self._cells_in_line == 1:
            kind, _ = self.out.lines[-1]
            self.out.lines[-1] = (kind, " ".join("".join(self._line).split()))
            self._line = None
        if tag == "p" and self._remark is not None:
            self.out.remarks.append(" ".join("".join(self._remark).split()))
            self._remark = None
        if tag == "table" and self._in_table:
            self._in_table = False
        elif tag == "tr":
            self._row = None
        elif tag == "th" and self._header is not None:
            self.out.headers.append("".join(self._header).strip())
            self._header = None
        elif tag == "sup" and self._sup is not None:
            self._cell_notes.append("".join(self._sup).strip().rstrip(")"))
            self._sup = None
        elif tag == "td" and self._cell is not None and self._row:
            self.out.rows[self._row].append("".join(self._cell).strip())
            self.out.row_notes[self._row].append(self._cell_notes)
            self._cell = None
        elif tag == "li" and self._item is not None:
            target = self.out.footnotes if self._list == "voetnoten" else self.out.notes
            target.append(" ".join("".join(self._item).split()))
            self._item = None
        elif tag in ("ol", "ul"):
            self._list = None
        elif tag == "p" and self._unmarked is not None:
            self.out.unmarked = " ".join("".join(self._unmarked).split())
            self._unmarked = None

    def handle_data(self, data):
        if self._line is not None and self._cells_in_line == 1:
            self._line.append(data)
        if self._remark is not None:
            self._remark.append(data)
        if self._unmarked is not None:
            self._unmarked.append(data)
        elif self._sup is not None:
            self._sup.append(data)
        elif self._cell is not None:
            self._cell.append(data)
        elif self._item is not None:
            self._item.append(data)
        elif self._header is not None:
            self._header.append(data)


def parse_report(html: str) -> ParsedReport:
    parser = _Parser()
    parser.feed(html)
    return parser.out
