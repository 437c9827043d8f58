"""A screenshot of a run's report page, for the docs.

    python benchmarks/report_screenshot.py RUN_DIR OUTPUT.png [--width 1280] [--height 1900] [--full-page]

Writes RUN_DIR/report.html (as `r1lab report` does), opens it in headless Chromium (see
r1lab/report/browser.py) and saves the top of the page, or all of it with --full-page. Prints
JSON: the page and screenshot paths, the page's size and its console errors (there should be none).
The docs' picture comes from a default run: `r1lab r1-zero --run-dir runs/r1-zero`, then this script.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from r1lab.report import write_report
from r1lab.report.browser import open_report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=1900)
    parser.add_argument("--full-page", action="store_true")
    args = parser.parse_args()

    page_path = write_report(args.run_dir)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with open_report(page_path, args.width, args.height) as (page, errors):
        page.screenshot(path=str(args.output), full_page=args.full_page)
    print(json.dumps({"report": str(page_path), "report_bytes": page_path.stat().st_size,
                      "screenshot": str(args.output), "console_errors": errors}, indent=2))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
