"""A storage URL's password never leaves the process: everything shown or written uses masked text.

``postgresql+psycopg2://fer:pw@db:5432/fer`` is shown as ``postgresql+psycopg2://fer:***@db:5432/fer``
(SQLAlchemy's own rendering). The password can also stay out of the URL altogether: libpq (under
psycopg2) reads ``PGPASSWORD`` and ``~/.pgpass``, and ``FER_STUDY_STORAGE`` supplies the whole URL
so that it is not on a command line that ``ps`` shows to other users.
"""
from __future__ import annotations

import re
from urllib.parse import quote, quote_plus

from sqlalchemy.engine import make_url

STORAGE_ENV = "FER_STUDY_STORAGE"  # the default --storage URL when set
MASK = "***"
# scheme://user:password@ anywhere in a text (a URL SQLAlchemy cannot parse, a command line, a message)
_SHORTEST_MASKED = 4  # masking a 1-3 character password in free text would mangle ordinary words
_CREDENTIALS = re.compile(r"([a-z][a-z0-9+.\-]*://[^:/@\s'\"]*:)[^@\s'\"]+@", re.IGNORECASE)


def mask_url(url: str) -> str:
    """The URL as it may be shown: the password replaced by ***, everything else kept."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy parses: mask what looks like user:password@
        return mask_text(url)


def mask_text(text: str, url: str | None = None) -> str:
    """``text`` with every user:password@ of a URL masked, and ``url``'s password wherever it appears."""
    text = _CREDENTIALS.sub(rf"\1{MASK}@", text)
    password = password_of(url) if url else None
    if password and len(password) >= _SHORTEST_MASKED:
        for form in {password, quote(password, safe=""), quote_plus(password)}:
            text = text.replace(form, MASK)
    return text


def password_of(url: str) -> str | None:
    """The URL's password (None when it has none, or is not a URL)."""
    try:
        return make_url(url).password or None
    except Exception:
        match = re.search(r"://[^:/@\s]*:([^@\s]+)@", url)
        return match.group(1) if match else None
