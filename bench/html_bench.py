"""A 1-hour, 20k-request planner run: HTML report size and headless-Chromium render time
(issue 6's targets: under 8 MB, under 5 s). Prints one line. Run by `make bench`."""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PLANNER = ('{"mode": "agg", "optimization_target": "latency", '
           '"load_adjustment_interval_seconds": 10, "report_output_dir": "%s"}')


def main() -> int:
    chromium = shutil.which("chromium")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "export"
        t0 = time.perf_counter()
        exe = str(Path(sys.executable).with_name("dynosim-tui"))  # the installed (compiled) one
        subprocess.run([exe, "--input-tokens", "2000",
                        "--output-tokens", "200", "--request-count", "20000",
                        "--request-rate", "5.56", "--num-workers", "2",
                        "--planner-config", PLANNER % tmp, "--export", str(out)],
                       check=True, capture_output=True, cwd=tmp)
        run_s = time.perf_counter() - t0
        html = out / "report.html"
        size_mb = html.stat().st_size / 1e6
        render = "chromium not installed"
        if chromium:
            args = [chromium, "--headless", "--no-sandbox", "--disable-gpu",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", f"--user-data-dir={tmp}/profile",
                    "--dump-dom"]
            t1 = time.perf_counter()
            subprocess.run([*args, "about:blank"], capture_output=True, timeout=60)
            blank = time.perf_counter() - t1
            t2 = time.perf_counter()
            dom = subprocess.run([*args, html.as_uri()], capture_output=True, text=True,
                                 timeout=120).stdout
            total = time.perf_counter() - t2
            plots = dom.count('class="main-svg"')
            render = (f"renders in {total - blank:.1f} s headless beyond browser start-up "
                      f"({total:.1f} s in all; {plots} plot layers)")
        print(f"html report, 1-hour 20k-request planner run ({run_s:.1f} s to simulate and "
              f"export): {size_mb:.1f} MB (target < 8), {render} (target < 5 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
