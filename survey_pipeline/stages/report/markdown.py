"""Render a `Document` as Markdown (GitHub-flavoured pipe tables), e.g. for the report's text editors."""

from __future__ import annotations

from survey_pipeline.stages.report.document import (
    AnnualTableBlock,
    Bullets,
    Document,
    Heading,
    Image,
    Paragraph,
    Table,
)
from survey_pipeline.stages.report.tables import AnnualTable

_SPECIAL = str.maketrans({c: "\\" + c for c in "\\|*_<>[]`#"})


def escape(text: str) -> str:
    """Text safe inside a Markdown table cell or paragraph (no emphasis, links or HTML)."""
    return " ".join(text.split()).translate(_SPECIAL)


def _row(cells) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(block: Table) -> list[str]:
    numeric = block.numeric or (False,) * len(block.headers)
    lines = [_row(escape(h) for h in block.headers), _row("---:" if n else "---" for n in numeric)]
    lines += [_row(escape(c) for c in row) for row in block.rows]
    if block.caption:
        lines += ["", f"*{escape(block.caption)}*"]
    return lines


def _annual(table: AnnualTable) -> list[str]:
    years = [f"**{escape(' '.join(c.header))}**" for c in table.columns]
    blank = ["" for _ in table.columns]
    rule = _row(["---", *("---:" for _ in table.columns)])
    lines: list[str] = [_row([f"**{escape(table.heading)}**", *years]), rule] if table.heading else []
    for section in table.sections:
        if table.heading:
            lines.append(_row([f"**{escape(section.title)}**", *blank]))
        else:
            lines += [_row([f"**{escape(section.title)}**", *years]), *([rule] if not lines else [])]
        if section.intro:
            lines.append(_row([f"*{escape(section.intro)}*", *blank]))
        for row in section.rows:
            cells = [escape(cell.text) + "".join(f" ({n})" for n in cell.notes) for cell in row.cells]
            lines.append(_row([escape(row.text), *(cells or blank)]))
    lines.append("")
    lines += [f"{escape(table.unmarked)}  "] if table.unmarked else []
    lines += [f"{escape(marker)} {escape(text)}  " for marker, text in table.footnotes]
    lines += [f"({key}) {escape(text)}  " for key, text in table.notes]
    lines += [f"{escape(text)}  " for text in table.scale_notes]
    lines += [f"{escape(remark)}  " for remark in table.remarks]
    return lines


def render_markdown(doc: Document) -> str:
    lines = [f"# {escape(doc.title)}", ""]
    if doc.subtitle:
        lines += [f"*{escape(doc.subtitle)}*", ""]
    for block in doc.blocks:
        if isinstance(block, Heading):
            lines += ["#" * block.level + " " + escape(block.text), ""]
        elif isinstance(block, Paragraph):
            link = block.link
            target = f"{link.page}.md" + (f"#{link.anchor}" if link and link.anchor else "") if link else ""
            lines += [escape(block.text) + (f" [{escape(link.label)}]({target})" if link else ""), ""]
        elif isinstance(block, Bullets):
            lines += [f"- {escape(item)}" for item in block.items] + [""]
        elif isinstance(block, Table):
            lines += _table(block) + [""]
        elif isinstance(block, Image):
            lines += [f"![{escape(block.alt)}]({block.src})", ""]
            if block.caption:
                lines += [f"*{escape(block.caption)}*", ""]
        elif isinstance(block, AnnualTableBlock):
            lines += _annual(block.table) + [""]
        else:
            raise TypeError(f"unknown block {type(block).__name__}")
    return "\n".join(lines).rstrip() + "\n"
