#!/usr/bin/env python3
"""Renders the README's headline chart (docs/demo-headline.png) from the demo's report.

The PNG is a screenshot, taken by headless Chromium, of the report's own SVG charts (accuracy and M_C
across checkpoints, with their 95% bootstrap bands) and its verdict sentence, cut out of
report/index.html unchanged, with the report's stylesheet. Nothing is redrawn or restyled here.

Rerun (from the repository root, after `make demo`; needs Debian's `chromium`):
    python3 Tools/render_headline_chart.py [--report Notebooks-out/demo/report] [--out docs/demo-headline.png]
"""
import argparse
import html
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cut(pattern, text, what):
    m = re.search(pattern, text, re.S)
    if not m:
        sys.exit(f"error: {what} not found in the report; regenerate it with `cpiscope demo`")
    return m.group(0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--report", default=str(ROOT / "Notebooks-out/demo/report"))
    ap.add_argument("--out", default=str(ROOT / "docs/demo-headline.png"))
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = ap.parse_args()

    page = (Path(args.report) / "index.html").read_text()
    style = cut(r"<style>.*?</style>", page, "the stylesheet")
    accuracy = cut(r'<svg id="chart-accuracy".*?</svg>', page, "the accuracy chart")
    mc = cut(r'<svg id="chart-mc".*?</svg>', page, "the M_C chart")
    verdict = re.search(r'<div class="headline"><p>(.*?)</p>', page, re.S)
    if not verdict:
        sys.exit("error: the verdict sentence is not in the report")
    title = "cpiscope demo — full finetuning of a 2-layer Llama on synthetic facts (Demo/full-ft), 48 held-out conflict probes"
    doc = f"""<!doctype html><html><head><meta charset="utf-8">{style}
<style>body{{margin:16px;width:1300px}} .row{{display:flex;gap:16px}} h1{{font-size:18px;margin:0 0 6px}}
p.v{{font-size:13px;margin:0 0 10px;max-width:1280px}}</style></head><body>
<h1>{html.escape(title)}</h1><p class="v">{verdict.group(1)}</p>
<div class="row">{accuracy}{mc}</div></body></html>"""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "headline.html"
        src.write_text(doc)
        out = Path(args.out).resolve()
        out.parent.mkdir(parents=True, exist_ok=True)
        r = subprocess.run([args.chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                            f"--user-data-dir={tmp}/profile", "--window-size=1332,420",
                            f"--screenshot={out}", src.as_uri()], capture_output=True, text=True, timeout=120)
        if r.returncode != 0 or not out.exists():
            sys.exit(f"error: chromium failed ({r.returncode}):\n{r.stderr}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
