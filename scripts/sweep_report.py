"""Rebuild a sweep's summary table (also of a partial or interrupted sweep), optionally with a plot of a knob.

python scripts/sweep_report.py outputs/multirun/2026-11-28/10-00-00 [--plot hidden]
"""

import argparse
import sys
from pathlib import Path

from makemore.sweep import markdown_table, write_summary


def fail(message: str) -> None:
    print(f"sweep_report: error: {message}", file=sys.stderr)
    sys.exit(2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--plot", metavar="KNOB", help="also write val_loss_vs_KNOB.png (e.g. hidden, emb_dim)")
    args = parser.parse_args()
    if not args.sweep_dir.is_dir():
        fail(f"not a directory: {args.sweep_dir}")
    rows = write_summary(args.sweep_dir)
    if not rows:
        fail(f"no job directories (N/.hydra/overrides.yaml) in {args.sweep_dir}")
    print(markdown_table(rows), end="")
    print(f"written: {args.sweep_dir / 'summary.csv'}, {args.sweep_dir / 'summary.md'}")
    if args.plot:
        from makemore.plots import knob_figure, save_figure

        pairs = [(o.partition("="), r["val_loss"]) for r in rows if r["status"] == "ok" for o in r["overrides"].split()]
        points = sorted((float(value), loss) for (key, _, value), loss in pairs if key.split(".")[-1] == args.plot)
        if not points:
            fail(f"no finished job sets '{args.plot}' in its overrides")
        out = args.sweep_dir / f"val_loss_vs_{args.plot}.png"
        save_figure(knob_figure(points, args.plot), out)
        print(f"written: {out}")


if __name__ == "__main__":
    main()
