"""One fork hook for the long-lived objects whose locks a forked child must make anew.

A child forked while another thread of the parent held such a lock would wait on it forever (prefork
servers fork exactly like this). Objects register a bound method; it is held weakly, so registering
keeps nothing alive.
"""

from __future__ import annotations

import os
import weakref
from typing import Any, Callable

_HOOKS: list[weakref.WeakMethod[Callable[[], Any]]] = []


def renew_in_child(method: Callable[[], Any]) -> None:
    """Call ``method`` (a bound method) in every child forked from now on, while its object lives."""
    _HOOKS[:] = [ref for ref in _HOOKS if ref() is not None]
    _HOOKS.append(weakref.WeakMethod(method))  # type: ignore[arg-type]


def _in_child() -> None:
    for ref in list(_HOOKS):
        method = ref()
        if method is not None:
            method()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_in_child)

__all__ = ["renew_in_child"]
