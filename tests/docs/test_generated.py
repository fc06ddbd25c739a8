"""The generated pages (configuration, key schema) are what ``python -m otel_redis.docgen`` makes."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from otel_redis import config, docgen, schema
from tests.servers import ROOT


@pytest.mark.parametrize("page", sorted(docgen.PAGES))
def test_the_committed_page_is_the_generated_one(page: str):
    assert (ROOT / page).read_text(encoding="utf-8") == docgen.generated(ROOT, page), (
        f"{page} differs from the tables in the code: run `python -m otel_redis.docgen`")


def test_every_setting_and_key_family_is_on_its_page():
    settings = (ROOT / "docs/configuration.md").read_text(encoding="utf-8")
    keys = (ROOT / "docs/key-schema.md").read_text(encoding="utf-8")
    assert all(f"| `{s.name}` |" in settings for s in config.SETTINGS)
    assert all(f"| `{f.shown}` |" in keys for f in schema.KEY_FAMILIES)


def test_a_changed_table_changes_the_page(monkeypatch: pytest.MonkeyPatch):
    page = "docs/configuration.md"
    before = docgen.generated(ROOT, page)
    changed = tuple(dataclasses.replace(s, default=501) if s.name == "OTEL_REDIS_CLEANUP_BATCH" else s
                    for s in config.SETTINGS)
    monkeypatch.setattr(config, "SETTINGS", changed)
    after = docgen.generated(ROOT, page)
    assert after != before and "| `OTEL_REDIS_CLEANUP_BATCH` | `501` |" in after
    families = tuple(f for f in schema.KEY_FAMILIES if f.name != "job_lock")
    monkeypatch.setattr(schema, "KEY_FAMILIES", families)
    assert "lock:job:" not in docgen.generated(ROOT, "docs/key-schema.md").split("<!-- generated:key-schema -->")[1]


def test_the_generator_keeps_the_prose_around_its_markers(tmp_path: Path):
    text = "# Title\n\nBefore.\n\n<!-- generated:x -->\nold\n<!-- /generated:x -->\n\nAfter.\n"
    out = docgen.replace_block(text, "x", "new table\n")
    assert out == "# Title\n\nBefore.\n\n<!-- generated:x -->\nnew table\n<!-- /generated:x -->\n\nAfter.\n"
    with pytest.raises(ValueError, match="generated:y"):
        docgen.replace_block(text, "y", "body")


@pytest.mark.e2e
def test_check_mode_reports_drift_and_the_write_mode_fixes_it(tmp_path: Path):
    for page in docgen.PAGES:
        (tmp_path / page).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / page).write_text((ROOT / page).read_text(encoding="utf-8"), encoding="utf-8")
    stale = tmp_path / "docs/key-schema.md"
    stale.write_text(stale.read_text(encoding="utf-8").replace("| `idx:req:all` |", "| `idx:req:everything` |"))
    run = [sys.executable, "-m", "otel_redis.docgen", "--root", str(tmp_path)]
    check = subprocess.run([*run, "--check"], capture_output=True, text=True)
    assert check.returncode == 1 and "docs/key-schema.md out of date" in check.stderr
    assert subprocess.run(run, capture_output=True, text=True).returncode == 0
    assert stale.read_text(encoding="utf-8") == (ROOT / "docs/key-schema.md").read_text(encoding="utf-8")
    assert subprocess.run([*run, "--check"], capture_output=True, text=True).returncode == 0
