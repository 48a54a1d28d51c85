"""The report of a real stored default run (smoke profile, slimmed: docs/studies/default-runs.md): its
size, and its first screen in a real browser (headless Chromium at 1280 x 800)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from PIL import Image

from hpml.report import add_report_arguments, run_report
from hpml.report.browser import find_chromium

REFERENCE = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "default-run-49fee1d"
#: The issue's budget for a default run's whole report (index.md + index.html + charts).
MAX_REPORT_BYTES = 2 * 1024 * 1024
WIDTH, HEIGHT = 1280, 800


@pytest.fixture(scope="module")
def reference_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    parser = argparse.ArgumentParser()
    add_report_arguments(parser)
    out = tmp_path_factory.mktemp("reference") / "report"
    assert run_report(parser.parse_args(["--storage", str(REFERENCE), "--out", str(out)])) == 0
    return out


def test_default_run_report_is_small_and_no_image_is_taller_than_2000px(reference_report: Path) -> None:
    files = [p for p in reference_report.rglob("*") if p.is_file() and not p.name.startswith(".")]
    assert sum(p.stat().st_size for p in files) <= MAX_REPORT_BYTES
    charts = list((reference_report / "charts").glob("*.png"))
    assert len(charts) >= 10
    for chart in charts:
        with Image.open(chart) as img:
            assert img.size[1] <= 2000, (chart.name, img.size)


@pytest.mark.skipif(find_chromium() is None, reason="no Chromium (apt-get install chromium, or set HPML_CHROMIUM)")
def test_first_screen_in_chromium_shows_the_heatmap_and_what_to_use(reference_report: Path, tmp_path: Path) -> None:
    from hpml.report.browser import Browser

    with Browser() as browser:
        page = browser.open(reference_report / "index.html", WIDTH, HEIGHT)
        heat = page.evaluate("(() => { const r = document.querySelector('figure.heatmap table')"
                             ".getBoundingClientRect(); return [r.top, r.bottom, r.width]; })()")
        advice = page.evaluate("[...document.querySelectorAll('h2')].find(h => h.textContent === 'What to use')"
                               ".getBoundingClientRect().top")
        images = page.evaluate("[...document.images].filter(i => i.complete && i.naturalWidth === 0).length")
        shot = page.screenshot()
        errors = page.errors
    assert errors == []
    top, bottom, width = heat
    assert 0 <= top < HEIGHT and bottom > top and width > 0  # the heatmap starts above the fold
    assert advice < HEIGHT  # and "What to use" begins on the first screen too
    assert images == 0  # no broken image
    (tmp_path / "first-screen.png").write_bytes(shot)
    with Image.open(tmp_path / "first-screen.png") as img:
        assert img.size == (WIDTH, HEIGHT)
