"""An engine URL, parsed and shown with its password masked.

Why masked everywhere: the URL is in errors that reach logs, Slack and HTTP clients; the
user, host, port and database help whoever reads them, the password never does."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

SCHEMES = {"postgresql": "postgres", "postgres": "postgres"}


def masked(url: str) -> str:
    """``postgresql://pantry:***@db:5432/shop`` for ``postgresql://pantry:secret@db:5432/shop``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit((parts.scheme, f"{user}{host}{port}", parts.path, parts.query, parts.fragment))


def scheme(url: str) -> str:
    return urlsplit(url).scheme.lower()
