"""Read a one-item-per-line text file into a list of items, refusing files we cannot train on."""

import hashlib
from pathlib import Path

from makemore.errors import DataError


def read_items(path: str | Path) -> list[str]:
    """Items of a UTF-8 file: one per line, surrounding whitespace stripped, empty lines dropped.

    A BOM and Windows line endings are accepted. Anything else that would make a silently wrong
    model (not a file, not UTF-8, nothing in it) is a DataError naming the file and the fix.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"data file not found: {path} (pass an existing file with data.path=/path/to/file.txt)")
    if path.is_dir():
        raise DataError(f"data.path is a directory, not a file: {path} (point data.path at a text file)")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(
            f"data file is not UTF-8 text: {path} (byte 0x{raw[e.start]:02x} at offset {e.start}); "
            "convert it, e.g. iconv -f latin1 -t utf-8"
        ) from None
    items = list(filter(None, map(str.strip, text.splitlines())))
    if not items:
        raise DataError(f"data file has no items (it is empty or only blank lines): {path}")
    return items


def file_sha256(path: str | Path) -> str:
    """Fingerprint of the data a model was trained on, recorded in its checkpoint."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
