"""Map UI benchmark: time to the first complete render, printing the view, and the size of the
built assets.

Opens the UI of a running service N times in a fresh (cold-cache) headless Chromium tab and
reads the `ecomap:first-idle` performance mark the app sets when the map first goes idle
(style, tiles and labels loaded and drawn). Prints the median, min and max, then the raw and
gzip size of every JS/CSS file in frontend/dist. With ``--print PAPER`` each loaded map is then
printed (PDF, landscape, ``--print-dpi``) and the `ecomap:print` measure the print tool records
(from the click to the finished file) is reported too (target: an A4 view in < 5 s).

    python bench/frontend_bench.py http://127.0.0.1:8000 --runs 7 --print A4
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


PRINT_JS = """async ([paper, dpi]) => {
  await window.ecomap.printTool.print({title: 'bench', paper, orientation: 'landscape', format: 'pdf', dpi});
  return performance.getEntriesByName('ecomap:print').at(-1).duration;
}"""


def measure_render(
    url: str, runs: int, chromium: str, width: int, height: int, paper: str | None = None, dpi: int = 200
) -> list[dict[str, float]]:
    """One cold-cache page load per run; milliseconds since navigation start (and the print's
    duration when `paper` is given)."""
    samples = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            for _ in range(runs):
                context = browser.new_context(viewport={"width": width, "height": height})
                page = context.new_page()
                requests: list[str] = []
                page.on("requestfinished", lambda r, sink=requests: sink.append(r.url))
                page.goto(url)
                page.wait_for_function(
                    "() => performance.getEntriesByName('ecomap:first-idle').length > 0", timeout=60_000
                )
                marks = page.evaluate(
                    """() => {
                      const at = (name) => performance.getEntriesByName(name)[0]?.startTime ?? NaN;
                      const nav = performance.getEntriesByType('navigation')[0];
                      const dom = nav.domContentLoadedEventEnd;
                      return {dom, load: at('ecomap:load'), idle: at('ecomap:first-idle')};
                    }"""
                )
                marks["requests"] = len(requests)
                if paper:
                    page.wait_for_function("() => window.ecomap && window.ecomap.printTool")
                    marks["print"] = page.evaluate(PRINT_JS, [paper, dpi])
                samples.append(marks)
                context.close()
        finally:
            browser.close()
    return samples


def asset_sizes(dist: Path) -> list[tuple[str, int, int]]:
    """(path, raw bytes, gzip -9 bytes) of each built JS/CSS file."""
    rows = []
    for path in sorted(dist.rglob("*")):
        if path.suffix in {".js", ".mjs", ".css"} and path.is_file():
            data = path.read_bytes()
            rows.append((str(path.relative_to(dist)), len(data), len(gzip.compress(data, compresslevel=9))))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="base URL of a running service, e.g. http://127.0.0.1:8000")
    parser.add_argument("--runs", type=int, default=5, help="page loads to time (default 5)")
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="Chromium binary")
    parser.add_argument("--size", default="1280x800", help="viewport WIDTHxHEIGHT")
    parser.add_argument("--print", dest="paper", choices=["A4", "A3"], help="also time printing the view on this paper")
    parser.add_argument("--print-dpi", type=int, default=200, help="print resolution (default 200)")
    parser.add_argument("--dist", type=Path, default=ROOT / "frontend" / "dist", help="built UI directory")
    args = parser.parse_args(argv)
    if not Path(args.chromium).is_file():
        print(f"error: no Chromium at {args.chromium} (apt-get install chromium)", file=sys.stderr)
        return 2
    width, height = (int(v) for v in args.size.lower().split("x"))

    samples = measure_render(
        args.url.rstrip("/") + "/", args.runs, args.chromium, width, height, args.paper, args.print_dpi
    )
    print(f"Time to first complete render (map idle), {args.runs} cold loads of {args.url} at {args.size}")
    print(f"{'metric':<28}{'median ms':>11}{'min ms':>9}{'max ms':>9}")
    for key, label in [("dom", "DOMContentLoaded"), ("load", "map load"), ("idle", "first idle (complete)")]:
        values = [s[key] for s in samples]
        print(f"{label:<28}{statistics.median(values):>11.0f}{min(values):>9.0f}{max(values):>9.0f}")
    if args.paper:
        values = [s["print"] for s in samples]
        label = f"print {args.paper} PDF {args.print_dpi} dpi"
        print(f"{label:<28}{statistics.median(values):>11.0f}{min(values):>9.0f}{max(values):>9.0f}")
    print(f"{'requests per load':<28}{statistics.median(s['requests'] for s in samples):>11.0f}")

    rows = asset_sizes(args.dist)
    if not rows:
        print(f"\nno built assets in {args.dist}: run `cd frontend && npm ci && npm run build`")
        return 0
    print(f"\nBuilt assets in {args.dist.relative_to(ROOT) if args.dist.is_relative_to(ROOT) else args.dist}")
    print(f"{'file':<46}{'raw KiB':>10}{'gzip KiB':>10}")
    for name, raw, gz in rows:
        print(f"{name:<46}{raw / 1024:>10.1f}{gz / 1024:>10.1f}")
    print(f"{'total':<46}{sum(r[1] for r in rows) / 1024:>10.1f}{sum(r[2] for r in rows) / 1024:>10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
