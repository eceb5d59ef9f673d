"""Download headers. A filename may hold Chinese (an institution's or a region's name): HTTP header values are
Latin-1, so the name goes as RFC 6266 / RFC 5987 `filename*=UTF-8''<percent-encoded>`, with an ASCII `filename`
beside it for old clients. Building the header by hand with the raw name failed the response (a 500)."""
from __future__ import annotations

import re
from urllib.parse import quote

_UNSAFE_ASCII = re.compile(r"[^A-Za-z0-9._\-]+")


def attachment(filename: str) -> dict[str, str]:
    """The Content-Disposition header of a download named `filename` (any Unicode)."""
    fallback = _UNSAFE_ASCII.sub("_", filename).strip("_") or "download"
    return {"Content-Disposition": f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"}
