"""The docs site builds with ``mkdocs build --strict``, and the README stays short."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.examples import blocks, documents
from tests.servers import ROOT


@pytest.mark.e2e
def test_mkdocs_build_strict(tmp_path: Path):
    mkdocs = Path(sys.executable).with_name("mkdocs")
    proc = subprocess.run([str(mkdocs), "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "site" / "index.html").exists()
    assert (tmp_path / "site" / "key-schema" / "index.html").exists()


def test_readme_is_at_most_200_lines_and_links_the_docs():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    for page in ("docs/getting-started.md", "docs/configuration.md", "benchmarks/RESULTS.md"):
        assert f"]({page})" in text


def test_every_docs_page_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in (ROOT / "docs").glob("*.md"):
        assert f" {page.name}" in nav, page.name


def test_a_no_run_marker_needs_a_reason(tmp_path: Path):
    page = tmp_path / "page.md"
    page.write_text("<!-- no-run:  -->\n```bash\necho hi\n```\n")
    with pytest.raises(ValueError, match="needs a reason"):
        blocks(page)


def test_markers_attach_to_the_next_fence_only(tmp_path: Path):
    page = tmp_path / "page.md"
    page.write_text("<!-- expect: hi -->\n```bash\necho hi\n```\n\nText.\n\n```python\nprint(1)\n```\n")
    first, second = blocks(page)
    assert first.expect == ("hi",) and second.expect == () and second.skip is None
    assert documents(ROOT)[0].name == "README.md"
