#!/usr/bin/python3
"""Pastes a set's generated results section into README.md.

  readme_results.py SET [README [SECTION]]

Replaces what lies between the lines `<!-- results:SET begin -->` and `<!-- results:SET end -->`
of README (default: the repository's README.md) with SECTION (default:
experiments/results/SET/results_section.md, which report.py generates from the runs' numbers and
run.sh --publish copies there). So the
README's tables are never typed by hand. Exit 2 if the markers or the section are missing.
Standard library only.
"""

import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def splice(text, name, section):
    """text with the block between SET's markers replaced by section (markers kept)."""
    begin, end = f"<!-- results:{name} begin -->", f"<!-- results:{name} end -->"
    lines = text.split("\n")
    try:
        b, e = lines.index(begin), lines.index(end)
    except ValueError:
        raise ValueError(f"README lacks the lines '{begin}' and '{end}'") from None
    if e < b:
        raise ValueError(f"'{end}' comes before '{begin}' in README")
    return "\n".join(lines[:b + 1] + [section.strip("\n")] + lines[e:])


def main(argv):
    if len(argv) not in (2, 3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    name = argv[1]
    readme = argv[2] if len(argv) >= 3 else os.path.join(REPO, "README.md")
    section_path = argv[3] if len(argv) == 4 else os.path.join(
        REPO, "experiments", "results", name, "results_section.md")
    try:
        with open(section_path) as f:
            section = f.read()
        with open(readme) as f:
            text = f.read()
        new = splice(text, name, section)
    except (OSError, ValueError) as e:
        print(f"readme_results.py: {e}", file=sys.stderr)
        return 2
    if new != text:
        with open(readme, "w") as f:
            f.write(new)
    print(f"readme_results.py: {name} section of {readme} {'updated' if new != text else 'unchanged'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
