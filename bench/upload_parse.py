"""How fast api/upload.py streams a multipart upload to its temporary file, and in how much memory (not a test).

    python bench/upload_parse.py FILE      (e.g. the .h5ad bench/h5ad_read.py caches under /tmp)

The file is sent as the `file` part of a form, in 64 KiB chunks, to receive_upload through a
stand-in request (no HTTP server: this measures the parser and the disk writes alone).
"""

from __future__ import annotations

import asyncio
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.upload import receive_upload  # noqa: E402

BOUNDARY = "bEnChBoUnDaRy"


class StreamedForm:
    """Just what receive_upload reads of a Starlette request: headers and the body stream."""

    def __init__(self, path: Path):
        self.path = path
        self.head = (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="project_id"\r\n\r\nbench\r\n'
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        self.tail = f"\r\n--{BOUNDARY}--\r\n".encode()
        length = len(self.head) + path.stat().st_size + len(self.tail)
        self.headers = {"content-type": f"multipart/form-data; boundary={BOUNDARY}", "content-length": str(length)}

    async def stream(self):
        yield self.head
        with self.path.open("rb") as f:
            while chunk := f.read(65536):
                yield chunk
        yield self.tail


async def main() -> None:
    path = Path(sys.argv[1])
    size = path.stat().st_size
    started = time.perf_counter()
    upload = await receive_upload(StreamedForm(path), 2**40, directory=os.environ.get("TMPDIR", "/tmp"))
    seconds = time.perf_counter() - started
    try:
        assert upload.size == size and upload.fields == {"project_id": "bench"}
    finally:
        upload.discard()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{size / 2**20:.0f} MiB in {seconds:.1f} s: {size / 2**20 / seconds:.0f} MiB/s; peak RSS {rss:.0f} MiB")


if __name__ == "__main__":
    asyncio.run(main())
