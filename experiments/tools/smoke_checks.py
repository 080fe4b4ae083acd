"""Helpers for the inline Python checks of check_smoke.sh (ctest "experiments_smoke").

Standard library only. check_smoke.sh runs each check as `python3 - REPORT_DIR ... <<'EOF'`
with this folder on PYTHONPATH, so a check starts with

    from smoke_checks import expect, report_rows
    rows = report_rows(sys.argv[1])

A failed expect() prints "check_smoke: WHAT" on stderr and exits 1, which check_smoke.sh
turns into its own FAIL line naming the check.
"""

import csv
import sys


def report_rows(report_dir):
    """Returns rows(name): the rows of the CSV file report_dir/name as dicts, in file order."""

    def rows(name):
        with open(f"{report_dir}/{name}", newline="") as f:
            return list(csv.DictReader(f))

    return rows


def expect(cond, what):
    """Exits 1 with "check_smoke: WHAT" on stderr unless cond holds."""
    if not cond:
        print(f"check_smoke: {what}", file=sys.stderr)
        sys.exit(1)
