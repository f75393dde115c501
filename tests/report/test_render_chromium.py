"""Render the HTML report in headless Chromium: the table, its footnotes and every image must be there.

Skips (with the reason) when no Chromium binary is installed; on Debian: `apt-get install chromium`.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from report_fixtures import annual_row_ids
from report_html import parse_report

BINARIES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
PROBE = """<script>
window.addEventListener("load", function () {
  for (const img of document.images) {
    img.setAttribute("data-loaded", String(img.complete && img.naturalWidth > 0));
  }
  document.body.setAttribute("data-rendered", "yes");
});
</script>
"""


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = next((path for name in BINARIES if (path := shutil.which(name))), None)
    if binary is None:
        pytest.skip("no Chromium binary on PATH (install the Debian package 'chromium' to run the rendering check)")
    return binary


def _run(chromium: str, profile, *args: str) -> subprocess.CompletedProcess:
    command = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)


@pytest.fixture(scope="module")
def rendered(chromium, report_run, tmp_path_factory):
    """The report folder copied, with a load-time probe marking each image that actually decoded."""
    folder = tmp_path_factory.mktemp("render") / "report"
    shutil.copytree(report_run.report, folder)
    page = folder / "jaarverslag.html"
    page.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    profile = tmp_path_factory.mktemp("chromium-profile")
    result = _run(chromium, profile, "--virtual-time-budget=15000", "--dump-dom", page.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    return folder, result.stdout, profile


def test_the_table_renders_with_every_indicator(rendered, spec):
    _, dom, _ = rendered
    assert 'data-rendered="yes"' in dom
    parsed = parse_report(dom)
    assert parsed.has_table
    assert list(parsed.rows) == annual_row_ids(spec)
    assert all(len(cells) == 6 for cells in parsed.rows.values())  # label + 3 Behaald + 2 Beoogd


def test_the_table_has_the_structure_of_the_2022_budget_page(rendered, spec):
    """Beleidsvelden as section headings, the intro sentences, a stem with its bullets, bases inline and
    "- (i.v.m. COVID)" where the spec says a question was not asked in a wave, as Chromium renders it."""
    _, dom, _ = rendered
    parsed = parse_report(dom)
    layout = spec.report_layout
    paragraphs = [" ".join(p.split()) for p in re.findall(r"<p>(.*?)</p>", dom, flags=re.S)]
    assert layout.intro in paragraphs  # the introductory sentence before the table
    kinds = [kind for kind, _ in parsed.lines]
    texts = dict(parsed.lines)
    assert parsed.lines[0] == ("section", "Prestatie indicator(en)")  # the column headers once, above all
    assert [text for kind, text in parsed.lines if kind == "beleidsveld"] == [
        "Stimulering samenlevingsopbouw",
        "Passende ondersteuning",
    ]
    assert texts["intro"] == " ".join(layout.sections[0].intro.split())
    stem = kinds.index("stem")
    assert parsed.lines[stem][1] == "% Inwoners (18 jaar e.o.) dat aangeeft:"
    members = next(row for row in layout.sections[0].rows if not isinstance(row, str)).members
    bullets = parsed.lines[stem + 1 : stem + 1 + len(members)]
    assert all(kind == "bullet" and text.startswith("\u2022 ") for kind, text in bullets)
    assert bullets[1][1] == "\u2022 (Redelijk en goed) bekend te zijn met de dienstverlening van WIJ Groningen"
    assert parsed.rows["contact_of_heard"][0].endswith("(van het deel dat gehoord heeft van WIJ Groningen)")
    assert parsed.footnotes == [] and parsed.unmarked == ""
    # Behaald 2020 of the Wmo bullets: not asked that year, with the spec's reason
    column = parsed.headers.index("Behaald 2020") + 1
    for indicator_id in ("wmo_quick", "wmo_taken_seriously", "wmo_fits_need"):
        assert parsed.rows[indicator_id][column] == "- (i.v.m. COVID)"
    assert any(note.endswith(") Niet gepubliceerd: effectieve steekproefomvang te klein.") for note in parsed.notes)
    # registration figures: a row in the first section, the Wmo counts as bullets under their own stem
    assert parsed.rows["entree_requests"][0] == "Aantal geregistreerde meldingen entree WIJ-Groningen"
    assert parsed.rows["entree_requests"][1].replace(".", "").isdigit()  # a count with thousands separators
    assert [parsed.rows[i][0] for i in ("wmo_household_help", "wmo_support", "wmo_sheltered_housing")] == [
        "\u2022 Huishoudelijke Hulp",
        "\u2022 Begeleiding",
        "\u2022 Beschermd Wonen",
    ]


def test_every_image_loads(rendered, report_run):
    _, dom, _ = rendered
    images = parse_report(dom).images
    assert len(images) == report_run.summary["figures"]
    assert [img["src"] for img in images if img.get("data-loaded") != "true"] == []


def test_screenshot(rendered, chromium, tmp_path):
    folder, _, profile = rendered
    shot = tmp_path / "jaarverslag.png"
    result = _run(
        chromium, profile, "--window-size=1280,2000", f"--screenshot={shot}", (folder / "jaarverslag.html").as_uri()
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
