"""Compare finished runs of any models in one table and one picture.

    python scripts/compare.py outputs/family/*                 # run dirs (or sweep dirs: their jobs)
    python scripts/compare.py RUN_DIR... --out outputs/compare
    python scripts/compare.py RUN_DIR... --mixed               # runs trained on different data files too

Prints which data the runs were trained on and the table (model, parameters, steps, train time, train/val/test
loss, lowest val first), and writes them to compare.md and the picture to compare.png (val loss against
parameters and against training time), both into --out. Runs trained on different data (another file, or
another split of it) are refused, as their losses are over different targets, unless --mixed: then the table
has a data column.
"""

import argparse
import sys
from pathlib import Path

from makemore.compare import data_line, family_rows, is_mixed, markdown, mixed_line
from makemore.errors import MakemoreError


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+", help="run directories, or sweep directories")
    parser.add_argument("--out", type=Path, default=Path("outputs") / "compare")
    parser.add_argument(
        "--mixed", action="store_true", help="put runs trained on different data in one table, with a data column"
    )
    args = parser.parse_args()
    try:
        rows = family_rows(args.runs)
        mixed = is_mixed(rows)
        if mixed and not args.mixed:
            data_line(rows)  # the error naming the two data files
    except MakemoreError as e:
        sys.exit(f"compare: error: {e}")
    from makemore.io import atomic_write_text
    from makemore.plots import family_figure, save_figure

    heading = mixed_line(rows) if mixed else data_line(rows)
    text = f"{heading}\n\n{markdown(rows, data_column=mixed)}"
    figure = family_figure(rows, subtitle=heading)  # drawn before anything is written
    print(text, end="")
    try:
        atomic_write_text(args.out / "compare.md", text)
        save_figure(figure, args.out / "compare.png")
    except OSError as e:
        sys.exit(f"compare: error: cannot write into {args.out}: {e.strerror or e}; pass a writable --out")
    print(f"written: {args.out / 'compare.md'}, {args.out / 'compare.png'}")


if __name__ == "__main__":
    main()
