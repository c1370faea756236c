"""Read a one-item-per-line text file into a list of items, refusing files we cannot train on."""

import hashlib
import unicodedata
from pathlib import Path

from makemore.errors import DataError


def read_text_file(path: str | Path) -> tuple[list[str], str]:
    """The items of `path` (one per line, surrounding whitespace stripped, empty lines dropped) and the sha256 of
    the very bytes they came from. Lines end at '\\n' only, so what `wc -l` counts is what we count; text is
    NFC-normalized (an accented letter written as letter + combining accent is its one precomposed character); a BOM
    is accepted. What would make a silently wrong model (not a file, binary, not UTF-8, no items) is a DataError
    naming the file and the fix."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"data file not found: {path} (pass an existing file with data.path=/path/to/file.txt)")
    if path.is_dir():
        raise DataError(f"data.path is a directory, not a file: {path} (point data.path at a text file)")
    raw = path.read_bytes()
    if b"\x00" in raw:
        raise DataError(
            f"data file looks binary (it contains NUL bytes at offset {raw.index(0)}): {path}; "
            "pass a UTF-8 text file with one item per line"
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(
            f"data file is not UTF-8 text: {path} (byte 0x{raw[e.start]:02x} at offset {e.start}); "
            "convert it, e.g. iconv -f latin1 -t utf-8"
        ) from None
    if not (items := list(filter(None, map(str.strip, unicodedata.normalize("NFC", text).split("\n"))))):
        raise DataError(f"data file has no items (it is empty or only blank lines): {path}")
    return items, hashlib.sha256(raw).hexdigest()
