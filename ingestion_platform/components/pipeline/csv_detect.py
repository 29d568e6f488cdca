"""Encoding and delimiter detection of pipeline CSV files, on the first bytes of a file: the platform's
shared reader (``lib.tabular``, also used by the CRM exports) applied to a sample.

* ``detect_encoding(sample) -> str``: ``lib.tabular.detect_encoding`` (BOM, strict UTF-8, Windows-1252,
  Latin-1; a multi-byte encoding read byte by byte is refused, naming the line), except that a UTF-8
  character cut by the end of the sample still means UTF-8.
* ``sniff_delimiter(text) -> str``: ``lib.tabular.sniff_delimiter`` (``; , tab |``, quotes respected).
"""

from __future__ import annotations

import io

from ingestion_platform.lib import tabular

SAMPLE_BYTES = 64 * 1024
sniff_delimiter = tabular.sniff_delimiter


def detect_encoding(sample: bytes, name: str = "<sample>") -> str:
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        cut = exc.start >= len(sample) - 3 and exc.reason == "unexpected end of data"
        if cut and not sample.startswith(b"\xef\xbb\xbf"):
            return "utf-8"
    return tabular.detect_encoding(io.BytesIO(sample), name).codec
