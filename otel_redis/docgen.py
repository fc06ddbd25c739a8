"""The generated parts of the docs: the configuration page from :data:`config.SETTINGS`, the key
schema page from :data:`schema.KEY_FAMILIES`. Tables written by hand drift; these cannot, because a
test compares the committed pages with this module's output.

``python -m otel_redis.docgen`` rewrites the generated blocks of ``docs/`` (between
``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->``); ``--check`` only reports drift and
exits 1. The prose around the markers is written by hand and kept as it is.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path
from typing import Callable

from . import config, schema

_VALUES = {
    "bool": "true / false", "text": "text", "path": "path", "list": "comma list", "names": "comma list",
    "networks": "comma list of IPs / CIDR networks", "url": "URL", "level": "level name",
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _default(s: config.Setting) -> str:
    """The default as the docs write it."""
    if s.shown is not None:
        text = s.shown
    elif s.default is None or s.default in ((), ""):
        text = "unset"
    elif isinstance(s.default, bool):
        text = f"`{str(s.default).lower()}`"
    elif isinstance(s.default, tuple):
        text = f"`{','.join(map(str, s.default))}`"
    else:
        text = f"`{s.default}`"
    return f"{text} (or `{s.fallback}`)" if s.fallback else text


def _values(s: config.Setting) -> str:
    """What a valid value is: the type and the bounds load_settings enforces."""
    if s.kind in ("int", "float"):
        kind = "integer" if s.kind == "int" else "number"
        if s.minimum is None:
            return kind
        if s.maximum is not None:
            return f"{s.minimum} to {s.maximum}"
        return f"{kind} >= {s.minimum}"
    if s.kind == "choice":
        return ", ".join(dict.fromkeys(v for _raw, v in s.choices))
    return _VALUES[s.kind]


def settings_markdown() -> str:
    """One table per section of :data:`config.SETTINGS`, then the alert rules' fields."""
    out: list[str] = []
    for key, title in config.SECTIONS:
        rows = [s for s in config.SETTINGS if s.section == key]
        out += [f"## {title}", "", "| Variable | Default | Values | Meaning |", "|---|---|---|---|"]
        out += [f"| `{s.name}` | {_cell(_default(s))} | {_cell(_values(s))} | {_cell(s.doc)} |" for s in rows]
        out.append("")
        if key == "alerts":
            out += _alert_rules()
    return "\n".join(out)


def _alert_rules() -> list[str]:
    """Every ``OTEL_REDIS_ALERT_<RULE>_<FIELD>`` with its default, from the rule dataclasses."""
    from . import alert_rules  # imports redis: only the generator needs it

    out = ["### Alert rules", "", "| Variable | Default |", "|---|---|"]
    for rule, cls in alert_rules.RULES.items():
        for f in fields(cls):
            value = f.default
            shown = ",".join(value) if isinstance(value, tuple) else str(value).lower() if isinstance(value, bool) else value
            out.append(f"| `OTEL_REDIS_ALERT_{rule.upper()}_{f.name.upper()}` | `{shown}` |")
    out.append("")
    return out


def key_schema_markdown() -> str:
    """One table per section of :data:`schema.KEY_FAMILIES`."""
    out: list[str] = []
    for key, title in schema.KEY_SECTIONS:
        rows = [f for f in schema.KEY_FAMILIES if f.section == key]
        out += [f"### {title}", "", "| Key | Type | Content | Lifetime | Cluster |", "|---|---|---|---|---|"]
        for f in rows:
            life = schema.RETENTION_CLASSES[f.retention]
            where = "split into parts" if f.hot else ""
            out.append(f"| `{f.shown}` | {f.type} | {_cell(f.content)} | {_cell(life)} | {where} |")
        out.append("")
    return "\n".join(out)


#: page -> (block name, generator) of each generated block
PAGES: dict[str, tuple[str, Callable[[], str]]] = {
    "docs/configuration.md": ("settings", settings_markdown),
    "docs/key-schema.md": ("key-schema", lambda: key_schema_markdown()),
}


def replace_block(text: str, name: str, body: str) -> str:
    """``text`` with the block between the ``name`` markers replaced by ``body``."""
    start, end = f"<!-- generated:{name} -->", f"<!-- /generated:{name} -->"
    head, found, rest = text.partition(start)
    if not found or end not in rest:
        raise ValueError(f"no {start} ... {end} block")
    _old, _, tail = rest.partition(end)
    return f"{head}{start}\n{body.rstrip()}\n{end}{tail}"


def generated(root: Path, page: str) -> str:
    """What ``page`` (relative to ``root``) should hold."""
    name, make = PAGES[page]
    return replace_block((root / page).read_text(encoding="utf-8"), name, make())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m otel_redis.docgen", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only report pages that differ (exit 1)")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the repository (default: the current folder)")
    args = parser.parse_args(argv)
    stale = []
    for page in PAGES:
        text = generated(args.root, page)
        if text != (args.root / page).read_text(encoding="utf-8"):
            stale.append(page)
            if not args.check:
                (args.root / page).write_text(text, encoding="utf-8")
    verb = "out of date" if args.check else "rewritten"
    print("; ".join(f"{page} {verb}" for page in stale) if stale else "docs up to date",
          file=sys.stderr if args.check and stale else sys.stdout)
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
