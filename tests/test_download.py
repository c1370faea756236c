import hashlib
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from makemore.data.download import download
from makemore.errors import DataError

PAYLOAD = b"emma\nolivia\nava\n"


@pytest.fixture
def server():
    """A real HTTP server on loopback serving PAYLOAD at /names.txt and 404 elsewhere."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/names.txt":
                self.send_response(200)
                self.send_header("Content-Length", str(len(PAYLOAD)))
                self.end_headers()
                self.wfile.write(PAYLOAD)
            else:
                self.send_error(404)

        def log_message(self, *args):
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_download_writes_verified_file(server, tmp_path):
    dest = tmp_path / "cache" / "names.txt"
    download(f"{server}/names.txt", dest, hashlib.sha256(PAYLOAD).hexdigest())
    assert dest.read_bytes() == PAYLOAD
    assert list(dest.parent.iterdir()) == [dest]  # no temp file left beside it


def test_checksum_mismatch_leaves_no_file(server, tmp_path):
    dest = tmp_path / "names.txt"
    with pytest.raises(DataError, match=r"sha256 .* expected .*data\.path="):
        download(f"{server}/names.txt", dest, "0" * 64)
    assert list(tmp_path.iterdir()) == []


def test_http_error_leaves_no_file(server, tmp_path):
    dest = tmp_path / "names.txt"
    with pytest.raises(DataError, match="could not download"):
        download(f"{server}/missing.txt", dest, "0" * 64)
    assert list(tmp_path.iterdir()) == []


def test_unreachable_server_leaves_no_file(tmp_path):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dest = tmp_path / "names.txt"
    with pytest.raises(DataError, match=r"could not download.*data\.path="):
        download(f"http://127.0.0.1:{port}/names.txt", dest, "0" * 64, timeout_s=5)
    assert list(tmp_path.iterdir()) == []


def test_existing_file_is_not_downloaded_again(tmp_path):
    dest = tmp_path / "names.txt"
    dest.write_bytes(b"mine\n")
    download("http://127.0.0.1:9/never", dest, "0" * 64)
    assert dest.read_bytes() == b"mine\n"
