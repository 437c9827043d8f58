"""A screenshot of a run's report page, for the docs.

    python benchmarks/report_screenshot.py RUN_DIR OUTPUT.png [--width 1280] [--rows 6] [--full-page]

Writes RUN_DIR/report.html (as `r1lab report` does), opens it in headless Chromium (see
r1lab/report/browser.py) and saves the page from its top down to the first `--rows` rows of the
completions table (the top 1900 pixels when the run logged no completions), or all of it with
--full-page. Prints JSON: the page and screenshot paths, the page's size and its console errors
(there should be none). The docs' picture, docs/img/report-r1-zero.png, comes from a default run:

    r1lab r1-zero --run-dir runs/r1-zero
    python benchmarks/report_screenshot.py runs/r1-zero docs/img/report-r1-zero.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from r1lab.report import write_report
from r1lab.report.browser import open_report

# the page's y coordinate below the first N completion rows; 1900 when there are none (or N is 0)
BOTTOM_OF_ROWS = """rows => {
    const table = document.querySelector("table.completions");
    if (!table || !table.tBodies[0].rows.length || rows < 1) return 1900;
    const body = table.tBodies[0].rows;
    const last = body[Math.min(rows, body.length) - 1];
    return Math.ceil(last.getBoundingClientRect().bottom + window.scrollY + 12);
}"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--rows", type=int, default=6, help="completion rows to include")
    parser.add_argument("--full-page", action="store_true")
    args = parser.parse_args()

    page_path = write_report(args.run_dir)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with open_report(page_path, args.width) as (page, errors):
        if args.full_page:
            page.screenshot(path=str(args.output), full_page=True)
        else:
            page.set_viewport_size({"width": args.width, "height": page.evaluate(BOTTOM_OF_ROWS, args.rows)})
            page.screenshot(path=str(args.output))
    print(json.dumps({"report": str(page_path), "report_bytes": page_path.stat().st_size,
                      "screenshot": str(args.output), "console_errors": errors}, indent=2))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
