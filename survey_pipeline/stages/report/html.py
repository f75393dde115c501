"""Render a `Document` as one self-contained HTML page (inline CSS, no scripts, no network).

All text is escaped (Jinja2 autoescape); images are referenced relative to the
page, so the report folder can be moved or zipped as a whole.
"""

from __future__ import annotations

import jinja2

from survey_pipeline.stages.report.document import (
    AnnualTableBlock,
    Bullets,
    Document,
    Heading,
    Image,
    Paragraph,
    Table,
)

CSS = """
body { font-family: "DejaVu Sans", Arial, sans-serif; font-size: 14px; color: #1d1d1b; max-width: 1100px;
       margin: 2em auto; padding: 0 1em; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ccc; }
h3 { font-size: 1.05em; margin-top: 1.4em; }
.subtitle { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 1em 0; width: 100%; }
th, td { padding: 0.35em 0.6em; vertical-align: top; text-align: left; border-bottom: 1px solid #e3e3e3; }
th { background: #f2f2f2; font-weight: bold; }
td.num, th.num { text-align: right; white-space: nowrap; }
table.annual th.year { text-align: right; white-space: nowrap; }
table.annual tr.section th { background: #00689e; color: #fff; font-size: 1.02em; }
table.annual td.label { width: 60%; }
table.annual tr.beleidsveld th { background: #e6f0f6; color: #00476b; font-size: 1.02em; }
table.annual tr.intro td { font-style: italic; color: #444; }
table.annual tr.bullet td.label { padding-left: 1.6em; text-indent: -0.9em; }
table.annual tr.stem td { border-bottom: none; }
sup.note { color: #00689e; }
caption { caption-side: bottom; text-align: left; color: #555; font-size: 0.9em; padding-top: 0.4em; }
ol.footnotes, ul.notes { font-size: 0.9em; color: #333; padding-left: 0; list-style: none; }
p.footnotes { font-size: 0.9em; color: #333; margin-bottom: 0; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #555; }
.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(480px, 1fr)); gap: 1em; }
"""

TEMPLATE = """<!DOCTYPE html>
<html lang="nl">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ doc.title }}</title>
<style>{{ css }}</style>
</head>
<body>
<h1>{{ doc.title }}</h1>
{% if doc.subtitle %}<p class="subtitle">{{ doc.subtitle }}</p>{% endif %}
{% for block in blocks %}
{%- if block.kind == "heading" %}
<h{{ block.b.level }}{% if block.b.anchor %} id="{{ block.b.anchor }}"{% endif %}>{{ block.b.text }}</h{{ block.b.level }}>
{%- elif block.kind == "paragraph" %}
<p>{{ block.b.text }}{% if block.b.link %} <a href="{{ block.b.link.page }}.html{% if block.b.link.anchor %}#{{ block.b.link.anchor }}{% endif %}">{{ block.b.link.label }}</a>{% endif %}</p>
{%- elif block.kind == "bullets" %}
<ul>{% for item in block.b.items %}<li>{{ item }}</li>{% endfor %}</ul>
{%- elif block.kind == "table" %}
<table>
{% if block.b.caption %}<caption>{{ block.b.caption }}</caption>{% endif %}
<thead><tr>{% for h in block.b.headers %}<th{% if block.numeric[loop.index0] %} class="num"{% endif %}>{{ h }}</th>{% endfor %}</tr></thead>
<tbody>
{% for row in block.b.rows %}<tr>{% for cell in row %}<td{% if block.numeric[loop.index0] %} class="num"{% endif %}>{{ cell }}</td>{% endfor %}</tr>
{% endfor %}</tbody>
</table>
{%- elif block.kind == "images" %}
<div class="{{ 'figures' if block.b|length > 1 else 'figure' }}">
{% for image in block.b %}<figure><img src="{{ image.src }}" alt="{{ image.alt }}">{% if image.caption %}<figcaption>{{ image.caption }}</figcaption>{% endif %}</figure>
{% endfor %}</div>
{%- elif block.kind == "annual" %}
{% set t = block.b.table %}
{% set width = t.columns|length + 1 %}
<table class="annual" id="jaarverslag-tabel">
<colgroup><col>{% for c in t.columns %}<col>{% endfor %}</colgroup>
{% if t.heading %}
<thead><tr class="section"><th scope="col">{{ t.heading }}</th>{% for c in t.columns %}<th class="year" scope="col">{{ c.header[0] }}<br>{{ c.header[1] }}</th>{% endfor %}</tr></thead>
{% endif %}
{% for section in t.sections %}
<tbody>
{% if t.heading %}
<tr class="beleidsveld"><th colspan="{{ width }}" scope="colgroup">{{ section.title }}</th></tr>
{% else %}
<tr class="section"><th scope="col">{{ section.title }}</th>{% for c in t.columns %}<th class="year" scope="col">{{ c.header[0] }}<br>{{ c.header[1] }}</th>{% endfor %}</tr>
{% endif %}
{% if section.intro %}<tr class="intro"><td colspan="{{ width }}">{{ section.intro }}</td></tr>
{% endif %}
{% for row in section.rows %}
{% if row.is_stem %}<tr class="stem"><td class="label">{{ row.label }}</td>{% for c in t.columns %}<td></td>{% endfor %}</tr>
{% else %}<tr data-indicator="{{ row.indicator_id }}"{% if row.level %} class="bullet"{% endif %}><td class="label">{% if row.bullet %}<span class="bullet">{{ row.bullet }}</span> {% endif %}{{ row.label }}{% if row.marker %}<span class="marker">{{ row.marker }}</span>{% endif %}{% if row.base %} <span class="base">{{ row.base }}</span>{% endif %}</td>
{% for cell in row.cells %}<td class="num">{{ cell.text }}{% for n in cell.notes %}<sup class="note">{{ n }})</sup>{% endfor %}</td>{% endfor %}</tr>
{% endif %}
{% endfor %}</tbody>
{% endfor %}
</table>
{% if t.unmarked %}<p class="footnotes" id="basis-zonder-voetnoot">{{ t.unmarked }}</p>{% endif %}
{% if t.footnotes %}<ol class="footnotes" id="voetnoten">{% for marker, text in t.footnotes %}<li><span class="marker">{{ marker }}</span> {{ text }}</li>{% endfor %}</ol>{% endif %}
{% if t.notes %}<ul class="notes" id="toelichting">{% for key, text in t.notes %}<li>{{ key }}) {{ text }}</li>{% endfor %}</ul>{% endif %}
{% if t.scale_notes %}<ul class="notes" id="eens-schaal">{% for text in t.scale_notes %}<li>{{ text }}</li>{% endfor %}</ul>{% endif %}
{% for remark in t.remarks %}<p class="footnotes remark">{{ remark }}</p>
{% endfor %}
{%- endif %}
{% endfor %}
</body>
</html>
"""

_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_TEMPLATE = _ENV.from_string(TEMPLATE)


def _blocks(doc: Document) -> list[dict]:
    """Blocks tagged by kind; consecutive images are grouped into one grid."""
    out: list[dict] = []
    for block in doc.blocks:
        if isinstance(block, Image):
            if out and out[-1]["kind"] == "images":
                out[-1]["b"].append(block)
            else:
                out.append({"kind": "images", "b": [block]})
        elif isinstance(block, Heading):
            out.append({"kind": "heading", "b": block})
        elif isinstance(block, Paragraph):
            out.append({"kind": "paragraph", "b": block})
        elif isinstance(block, Bullets):
            out.append({"kind": "bullets", "b": block})
        elif isinstance(block, Table):
            numeric = block.numeric or (False,) * len(block.headers)
            out.append({"kind": "table", "b": block, "numeric": numeric})
        elif isinstance(block, AnnualTableBlock):
            out.append({"kind": "annual", "b": block})
        else:
            raise TypeError(f"unknown block {type(block).__name__}")
    return out


def render_html(doc: Document) -> str:
    return _TEMPLATE.render(doc=doc, blocks=_blocks(doc), css=CSS)
