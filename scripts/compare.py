"""Compare finished runs of any models in one table and one picture.

    python scripts/compare.py outputs/family/*                 # run dirs (or sweep dirs: their jobs)
    python scripts/compare.py RUN_DIR... --out outputs/compare

Prints the table (model, parameters, steps, train time, train/val/test loss, lowest val first) and writes
compare.md and compare.png (val loss against parameters and against training time) into --out.
"""

import argparse
import sys
from pathlib import Path

from makemore.compare import family_rows, markdown
from makemore.errors import MakemoreError


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+", help="run directories, or sweep directories")
    parser.add_argument("--out", type=Path, default=Path("outputs") / "compare")
    args = parser.parse_args()
    try:
        rows = family_rows(args.runs)
    except MakemoreError as e:
        sys.exit(f"compare: error: {e}")
    from makemore.io import atomic_write_text
    from makemore.plots import family_figure, save_figure

    table = markdown(rows)
    print(table, end="")
    atomic_write_text(args.out / "compare.md", table)
    save_figure(family_figure(rows), args.out / "compare.png")
    print(f"written: {args.out / 'compare.md'}, {args.out / 'compare.png'}")


if __name__ == "__main__":
    main()
