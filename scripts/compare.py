"""Compare finished runs of any models in one table (compare.md) and one picture (compare.png), written into --out.

python scripts/compare.py outputs/family/*      # run dirs (or sweep dirs: their jobs), lowest val loss first
python scripts/compare.py RUN_DIR... --mixed    # runs trained on different data (other targets) too
"""

import argparse
import sys
from pathlib import Path

from makemore.compare import data_line, family_rows, is_mixed, markdown
from makemore.errors import MakemoreError
from makemore.io import atomic_write_text
from makemore.plots import family_figure, save_figure


def fail(message: str) -> None:
    print(f"compare: error: {message}", file=sys.stderr)
    sys.exit(2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+", help="run directories, or sweep directories")
    parser.add_argument("--out", type=Path, default=Path("outputs") / "compare")
    parser.add_argument("--mixed", action="store_true", help="also runs on different data, with a data column")
    args = parser.parse_args()
    try:
        rows = family_rows(args.runs)
        heading = data_line(rows, mixed=args.mixed)
    except MakemoreError as e:
        fail(f"{e}")
    text = f"{heading}\n\n{markdown(rows, data_column=is_mixed(rows))}"
    figure = family_figure(rows, subtitle=heading)  # drawn before anything is written
    print(text, end="")
    try:
        atomic_write_text(args.out / "compare.md", text)
        save_figure(figure, args.out / "compare.png")
    except OSError as e:
        fail(f"cannot write into {args.out}: {e.strerror or e}; pass a writable --out")
    print(f"written: {args.out / 'compare.md'}, {args.out / 'compare.png'}")


if __name__ == "__main__":
    main()
