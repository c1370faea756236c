"""The lowest-versions job's first check: every direct dependency in pyproject.toml (with its extras) is installed
at exactly its declared floor, so the floors are the versions the smoke subset then runs on. torch is the one
exception, held at the README's CPU build (see pyproject's comment). Run with the lowest venv's python."""

import re
import sys
from importlib.metadata import PackageNotFoundError, requires, version

from packaging.requirements import Requirement
from packaging.version import Version

HELD = {"torch": "2.13.0"}  # no CPU build of torch's floor installs here: the README's version instead

# pyproject's dependencies and extras, as the installed (editable) makemore declares them
requirements = [r for r in map(Requirement, requires("makemore")) if r.name != "makemore"]

wrong = []
for requirement in requirements:
    floors = [s.version for s in requirement.specifier if s.operator in (">=", "==")]
    try:
        installed = version(requirement.name)
    except PackageNotFoundError:
        installed = "missing"
    floor = floors[0] if floors else "none"
    held = HELD.get(requirement.name)
    if held is not None:
        ok = installed != "missing" and Version(installed).public == held
        note = f"held at {held} (floor {floor})"
    else:
        ok = floors != [] and installed != "missing" and Version(installed) == Version(floor)
        note = "the floor" if ok else f"floor {floor}"
    print(f"{requirement.name:26} {installed:14} {note}")
    if not ok:
        wrong.append(f"{requirement.name}: installed {installed}, {note}")
if wrong:
    sys.exit("not at the declared floors:\n  " + "\n  ".join(wrong))
if not re.fullmatch(r"\d+\.\d+\.\d+\+cpu", version("torch")):
    sys.exit(f"torch {version('torch')} is not the CPU build")
