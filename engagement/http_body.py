"""Reading request bodies: size limits, chunked transfer and gzip, for every endpoint.

Django reads a body through a stream capped at `Content-Length` and takes a
body without one as empty, which drops `Transfer-Encoding: chunked` requests
(the WSGI server has already de-chunked them). `read_body` reads those from
the WSGI input itself, never more than the limit plus one byte. A gzip body
is inflated incrementally and refused (413) as soon as it passes the limit,
so a gzip bomb is never inflated in full.
"""

import zlib

from django.conf import settings
from django.http import HttpRequest

from .api_errors import ApiError

GZIP = "gzip"
IDENTITY = "identity"


def read_body(request: HttpRequest, limit: int | None = None) -> bytes:
    """The raw (still encoded) body; 413 when it is over the limit, before or after reading."""
    limit = limit or settings.PULSE_MAX_BODY_BYTES
    declared = request.META.get("CONTENT_LENGTH") or ""
    if declared.strip():
        try:
            length = int(declared)
        except ValueError:
            raise ApiError(400, "invalid_request", "Content-Length is not a number") from None
        if length > limit:
            raise too_large(limit)
        body = request.read(limit + 1)
    elif _is_chunked(request):
        body = _read_unbounded(request.META.get("wsgi.input"), limit + 1)
    else:
        body = b""
    if len(body) > limit:
        raise too_large(limit)
    return body


def _is_chunked(request: HttpRequest) -> bool:
    return "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()


def _read_unbounded(stream, most: int) -> bytes:
    """Read until the end of a stream of unknown length, stopping at `most` bytes."""
    if stream is None:
        return b""
    out = bytearray()
    while len(out) < most:
        piece = stream.read(min(64 * 1024, most - len(out)))
        if not piece:
            break
        out += piece
    return bytes(out)


def content_encoding(request: HttpRequest) -> str:
    """`gzip` or `identity`; 415 for any other `Content-Encoding`."""
    codings = [c.strip().lower() for c in request.headers.get("Content-Encoding", "").split(",")]
    codings = [c for c in codings if c and c != IDENTITY]
    if not codings:
        return IDENTITY
    if codings in ([GZIP], ["x-gzip"]):
        return GZIP
    raise ApiError(415, "unsupported_media_type", "the only content encoding understood is gzip")


def decoded_body(request: HttpRequest, limit: int | None = None) -> bytes:
    """The body with its content encoding undone; the limit applies after decompression."""
    limit = limit or settings.PULSE_MAX_BODY_BYTES
    encoding = content_encoding(request)
    body = read_body(request, limit)
    return gunzip(body, limit) if encoding == GZIP else body


def gunzip(data: bytes, limit: int) -> bytes:
    """Inflate gzip `data` (one or more members) without ever holding more than `limit` + 1 bytes.

    Raises 413 as soon as the output passes `limit` and 400 when the data is
    not complete gzip.
    """
    out = bytearray()
    pending = data
    try:
        while True:
            inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            chunk = pending
            while True:
                piece = inflater.decompress(chunk, limit + 1 - len(out))
                out += piece
                if len(out) > limit:
                    raise too_large(limit, decompressed=True)
                if inflater.eof:
                    break
                chunk = inflater.unconsumed_tail
                if not chunk and not piece:
                    raise ApiError(400, "invalid_gzip", "the gzip body is truncated")
            pending = inflater.unused_data
            if not pending.strip(b"\x00"):
                return bytes(out)
    except zlib.error as exc:
        raise ApiError(400, "invalid_gzip", f"the body is not valid gzip: {exc}") from None


def too_large(limit: int, *, decompressed: bool = False) -> ApiError:
    suffix = " once decompressed" if decompressed else ""
    return ApiError(413, "payload_too_large", f"the body exceeds {limit} bytes{suffix}")
