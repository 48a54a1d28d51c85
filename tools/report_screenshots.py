"""``python tools/report_screenshots.py STORAGE DOCS``: the README's two report screenshots.

Writes the report of STORAGE (a pytest-benchmark storage folder or run files) into a
temporary folder, opens it in headless Chromium at 1280 x 800 and saves

* ``DOCS/report-first-screen.png`` -- what a reader sees first (heatmap, what to use);
* ``DOCS/report-workload-detail.png`` -- the first workload's details, opened.

Exit 2 with one line when Chromium is missing or the input is bad.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from hpml.errors import HpmlError

WIDTH, HEIGHT = 1280, 800  # CSS px: a common laptop viewport

#: Opens the first workload whose details hold a chart and scrolls its heading to the top.
OPEN_DETAIL = """(() => {
  const all = [...document.querySelectorAll('details')];
  const charted = all.filter(e => e.querySelector('img'));
  const d = charted.find(e => e.querySelector('summary').textContent.includes('·')) || charted[0] || all[0];
  if (!d) return false;
  d.open = true;
  d.scrollIntoView({block: 'start'});
  const loaded = i => i.complete ? 0 : new Promise(r => { i.onload = i.onerror = r; });
  return Promise.all([...d.querySelectorAll('img')].map(loaded))
    .then(() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true)))));
})()"""


def take(report: Path, docs: Path) -> list[Path]:
    from hpml.report.browser import Browser

    docs.mkdir(parents=True, exist_ok=True)
    first, detail = docs / "report-first-screen.png", docs / "report-workload-detail.png"
    with Browser() as browser:
        page = browser.open(report / "index.html", WIDTH, HEIGHT)
        first.write_bytes(page.screenshot())
        if not page.evaluate(OPEN_DETAIL):
            raise HpmlError(f"{report / 'index.html'}: no workload details to show")
        detail.write_bytes(page.screenshot())
        if page.errors:
            raise HpmlError(f"{report / 'index.html'}: browser errors: {'; '.join(page.errors)}")
    return [first, detail]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/report_screenshots.py", description=__doc__.split("\n")[0])
    parser.add_argument("storage", type=Path, help="benchmark storage folder (or a run file) to report on")
    parser.add_argument("docs", type=Path, help="folder to write the two PNGs to")
    parser.add_argument("--config", type=Path, metavar="PYPROJECT", help="[tool.hpml.gate] to read (default: nearest)")
    args = parser.parse_args(argv)
    from hpml.report.command import run_report

    try:
        with tempfile.TemporaryDirectory(prefix="hpml-report-") as tmp:
            out = Path(tmp) / "report"
            run_report(argparse.Namespace(paths=[args.storage], storage=args.storage, out=out, config=args.config))
            for path in take(out, args.docs):
                print(f"hpml report screenshots: wrote {path}")
    except HpmlError as exc:
        print(f"hpml: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
