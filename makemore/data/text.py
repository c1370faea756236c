"""Read a one-item-per-line text file into a list of items, refusing files we cannot train on."""

import hashlib
import unicodedata
from pathlib import Path

from makemore.errors import DataError


def read_text_file(path: str | Path) -> tuple[list[str], str]:
    """The items of `path` (lines split at '\\n' only, stripped, NFC-normalized, empty ones dropped) and the sha256 of
    its bytes; a file that is not UTF-8 text with items is a DataError."""
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
