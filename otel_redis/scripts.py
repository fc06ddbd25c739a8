"""The write path's Lua scripts, read from ``lua/*.lua`` (package resources), and their SHA1s.

The batch sends scripts as ``EVALSHA`` inside its packed round trip (transport.py), so it needs
each script's SHA before any client object exists; :func:`load` puts them on a server (at the
first write, and again after a ``NOSCRIPT`` reply). Calls outside the batch use redis-py's
``Script`` (``register_script``), which handles ``NOSCRIPT`` itself.
"""

from __future__ import annotations

import hashlib
from importlib import resources


def _read(name: str) -> str:
    return resources.files(__package__).joinpath(f"lua/{name}").read_text(encoding="utf-8")


def sha1(script: str) -> str:
    """The SHA1 Redis names ``script`` by (``EVALSHA``)."""
    return hashlib.sha1(script.encode()).hexdigest()


#: a due index: ZADD its members, trim the oldest past retention (bounded), EXPIRE
ADD_TRIM_EXPIRE = _read("add_trim_expire.lua")
ADD_TRIM_EXPIRE_SHA = sha1(ADD_TRIM_EXPIRE)
#: many (field, increment) pairs of one hash (a response-time histogram)
HINCRBY_PAIRS = _read("hincrby_pairs.lua")
HINCRBY_PAIRS_SHA = sha1(HINCRBY_PAIRS)
#: set a late reverse-DNS hostname on a record that still exists
PATCH_HOSTNAME = _read("patch_hostname.lua")

__all__ = ["ADD_TRIM_EXPIRE", "ADD_TRIM_EXPIRE_SHA", "HINCRBY_PAIRS", "HINCRBY_PAIRS_SHA", "PATCH_HOSTNAME", "sha1"]
