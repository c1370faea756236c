"""Fetch the default dataset once into the data cache, verified and written atomically."""

import re
import socket
from pathlib import Path

from torch.hub import download_url_to_file

from makemore.errors import DataError


def download(url: str, dest: str | Path, sha256: str, timeout_s: float = 30.0) -> None:
    """Download `url` to `dest` unless it is there; a failed or corrupt download leaves no file."""
    dest = Path(dest)
    if dest.exists():
        return
    how_to = f"download it yourself to {dest}, or pass your own file with data.path=/path/to/file.txt"
    dest.parent.mkdir(parents=True, exist_ok=True)
    timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout_s)  # download_url_to_file takes no timeout; its urlopen uses this one
    try:
        download_url_to_file(url, str(dest), hash_prefix=sha256, progress=False)
    except OSError as e:  # urllib's URLError (no connection, an HTTP error) is an OSError too
        raise DataError(f"could not download {url}: {getattr(e, 'reason', e)}; {how_to}") from None
    except RuntimeError as e:  # torch.hub's 'invalid hash value (expected "...", got "<digest>")'
        got = re.search(r'got "([0-9a-f]+)"', str(e))
        digest = got.group(1) if got else f"other than expected ({e})"
        raise DataError(f"download of {url} has sha256 {digest}, expected {sha256}; {how_to}") from None
    finally:
        socket.setdefaulttimeout(timeout)
