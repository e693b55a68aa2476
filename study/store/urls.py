"""A storage URL's password never leaves the process: everything shown or written uses masked text.

``postgresql+psycopg2://fer:pw@db:5432/fer`` is shown as ``postgresql+psycopg2://fer:***@db:5432/fer``
(SQLAlchemy's own rendering). The password can also stay out of the URL altogether: libpq (under
psycopg2) reads ``PGPASSWORD`` and ``~/.pgpass``, and ``FER_STUDY_STORAGE`` supplies the whole URL
so that it is not on a command line that ``ps`` shows to other users.
"""
from __future__ import annotations

import re
from urllib.parse import quote, quote_plus, unquote

from sqlalchemy.engine import make_url

STORAGE_ENV = "FER_STUDY_STORAGE"  # the default --storage URL when set
MASK = "***"
_SHORTEST_MASKED = 4  # masking a 1-3 character password in free text would mangle ordinary words
_TOKEN = re.compile(r"[^\s'\"]+")  # a URL, a host spec or a command-line word, quotes excluded
# what precedes user:password: an option's "--storage=", then a scheme ("postgresql://", a typo's ":/")
_PREFIX = re.compile(r"(--?[a-z][\w-]*=)?([a-z][a-z0-9+.\-]*:/+)?", re.IGNORECASE)


def mask_url(url: str) -> str:
    """The URL as it may be shown: the password replaced by ***, everything else kept. SQLAlchemy
    renders it; an ``@`` inside the password (unencoded) is masked up to the URL's last ``@``."""
    try:
        rendered = make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy parses
        rendered = url
    return mask_text(rendered, url)


def mask_text(text: str, url: str | None = None) -> str:
    """``text`` with the password of every credential-shaped word masked, whatever its shape
    (``scheme://user:pw@host``, ``scheme:/user:pw@host``, ``user:pw@host:port/db``, a password holding
    ``@``), and ``url``'s password wherever else it appears."""
    text = _TOKEN.sub(lambda match: _mask_word(match.group(0)), text)
    password = password_of(url) if url else None
    # the password, its encodings, and the pieces an "@" in it splits it into (a message may show a
    # piece as the host)
    pieces = {password, unquote(password), *unquote(password).split("@")} if password else set()
    for piece in sorted((p for p in pieces if len(p) >= _SHORTEST_MASKED), key=len, reverse=True):
        for form in {piece, quote(piece, safe=""), quote_plus(piece)}:
            text = text.replace(form, MASK)
    return text


def _mask_word(word: str) -> str:
    """``user:secret@host`` -> ``user:***@host``: the secret runs from the first ``:`` after any
    ``--flag=`` and scheme to the word's last ``@``, so an unencoded ``@`` in it is masked too."""
    at = word.rfind("@")
    if at < 0:
        return word
    colon = word.find(":", _PREFIX.match(word).end(), at)
    if colon < 0 or colon + 1 == at:
        return word  # user@host, or an empty password: nothing secret
    return f"{word[:colon + 1]}{MASK}{word[at:]}"


def password_of(url: str) -> str | None:
    """The URL's password (None when it has none): from the first ``:`` after the user to the last
    ``@``, so that an unencoded ``@`` in it does not cut it short (SQLAlchemy would read the rest as
    the host)."""
    masked = _mask_word(url)
    if masked == url:
        return None
    colon = masked.index(MASK) - 1
    return url[colon + 1:url.rfind("@")] or None
