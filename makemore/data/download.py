"""Fetch the default dataset once into the data cache, verified and written atomically."""

import hashlib
import urllib.error
import urllib.request
from pathlib import Path

from makemore.errors import DataError
from makemore.io import atomic_write_bytes


def download(url: str, dest: str | Path, sha256: str, timeout_s: float = 30.0) -> Path:
    """Download `url` to `dest` unless it is there; a failed or corrupt download leaves no file."""
    dest = Path(dest)
    if dest.exists():
        return dest
    how_to = f"download it yourself to {dest}, or pass your own file with data.path=/path/to/file.txt"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            payload = response.read()
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise DataError(f"could not download {url}: {reason}; {how_to}") from None
    digest = hashlib.sha256(payload).hexdigest()
    if digest != sha256:
        raise DataError(f"download of {url} has sha256 {digest}, expected {sha256}; {how_to}")
    atomic_write_bytes(dest, payload)
    return dest
