"""The documentation cannot drift from the code: every sample runs and the site builds with warnings as errors.

* every tutorial script ``docs/tutorials/*.py`` runs to the end;
* every ```` ```python ```` block of every page (``docs/**/*.md`` and ``README.md``) runs, the blocks of a page
  in order in one namespace; a block preceded by ``<!-- skip-exec -->`` is illustrative only and not run, a
  block preceded by ``<!-- needs-shared: <path under ../shared> -->`` skips its page with a message when that
  file is absent; a block that only includes tutorial sections (``--8<-- "tutorials/x.py:section"``) is run
  as part of its script, and the sections it names must exist;
* every ``ssl-featurizer ...`` command line shown in a shell block parses with the real argument parser;
* ``mkdocs build --strict`` succeeds (when the ``docs`` extra is installed).

Samples run in a temporary folder next to a link named ``shared`` to the shared data, so ``../shared/...``
paths in samples work as they do from a checkout.
"""

from __future__ import annotations

import importlib.util
import os
import re
import runpy
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
TUTORIALS = sorted((DOCS / "tutorials").glob("*.py"))
PAGES = sorted(p for p in DOCS.rglob("*.md") if "_hooks" not in p.parts) + [ROOT / "README.md"]
SHARED = Path(os.environ.get("SSL_FEATURIZER_SHARED", ROOT.parent / "shared"))  # as in conftest.py

FENCE_OPEN = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,})(?P<info>[^`]*)$")
MARKER = re.compile(r"<!--\s*(skip-exec|needs-shared:\s*(?P<path>\S+))\s*-->")
SNIPPET = re.compile(r'^--8<--\s+"(?P<file>[^":]+)(?::(?P<section>[\w-]+))?"\s*$')


@dataclass
class Block:
    """A fenced code block of a page."""

    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    marker: str | None  # "skip-exec", "needs-shared:<path>" or None


def code_blocks(page: Path) -> list[Block]:
    """Fenced blocks of a Markdown page, with the marker comment on the line just before each, if any."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks, i, previous = [], 0, ""
    while i < len(lines):
        m = FENCE_OPEN.match(lines[i])
        if not m:
            if lines[i].strip():
                previous = lines[i].strip()
            i += 1
            continue
        fence, start = m["fence"], i
        body = []
        i += 1
        while i < len(lines) and lines[i].strip() != fence:
            body.append(lines[i][len(m["indent"]):])
            i += 1
        mark = MARKER.fullmatch(previous)
        marker = None if mark is None else ("skip-exec" if mark[1] == "skip-exec" else f"needs-shared:{mark['path']}")
        info = m["info"].strip().split()
        blocks.append(Block(page, start + 1, info[0] if info else "", "\n".join(body) + "\n", marker))
        previous = ""
        i += 1
    return blocks


def _snippets(block: Block) -> list[re.Match] | None:
    """The snippet includes of a block made only of them, else None."""
    lines = [ln.strip() for ln in block.code.splitlines() if ln.strip()]
    matches = [SNIPPET.match(ln) for ln in lines]
    return matches if lines and all(matches) else None


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@pytest.fixture
def sample_dir(tmp_path, monkeypatch):
    """A working folder with ``../shared`` pointing at the shared data."""
    if SHARED.exists():
        (tmp_path / "shared").symlink_to(SHARED.resolve(), target_is_directory=True)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("SSL_FEATURIZER_SHARED", str(tmp_path / "shared"))
    return work


@pytest.mark.parametrize("script", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_script_runs(script, sample_dir, capsys):
    if "needs ../shared/data" in script.read_text().split("\n\n")[0] and not SHARED.exists():
        pytest.skip(f"{_rel(script)} needs ../shared/data (set SSL_FEATURIZER_SHARED to the shared folder)")
    runpy.run_path(str(script), run_name="__main__")
    assert capsys.readouterr().out.strip(), f"{_rel(script)} printed nothing"


def _python_blocks(page: Path) -> list[Block]:
    return [b for b in code_blocks(page) if b.lang in ("python", "py")]


EXEC_PAGES = [p for p in PAGES if any(b.marker != "skip-exec" and _snippets(b) is None for b in _python_blocks(p))]


@pytest.mark.parametrize("page", EXEC_PAGES, ids=[_rel(p) for p in EXEC_PAGES])
def test_page_python_blocks_run(page, sample_dir):
    namespace: dict = {"__name__": "__docs__"}
    for block in _python_blocks(page):
        if block.marker == "skip-exec" or _snippets(block) is not None:
            continue
        if block.marker and block.marker.startswith("needs-shared:"):
            needed = SHARED / block.marker.split(":", 1)[1]
            if not needed.exists():
                pytest.skip(f"{_rel(page)}:{block.line} needs {needed} (shared data absent; "
                            "set SSL_FEATURIZER_SHARED to the shared folder)")
        exec(compile(block.code, f"{_rel(page)}:{block.line}", "exec"), namespace)  # noqa: S102


def test_tutorial_includes_name_existing_sections():
    included = set()
    for page in PAGES:
        for block in _python_blocks(page):
            for m in _snippets(block) or []:
                source = DOCS / m["file"]
                assert source in TUTORIALS, f"{_rel(page)}:{block.line} includes {m['file']}, not a tutorial script"
                assert m["section"] and f"# --8<-- [start:{m['section']}]" in source.read_text(), \
                    f"{_rel(page)}:{block.line}: section {m['section']!r} not found in {m['file']}"
                included.add(source)
    assert included == set(TUTORIALS), f"tutorial scripts shown on no page: {set(TUTORIALS) - included}"


def _command_lines(block: Block) -> list[str]:
    """``ssl-featurizer ...`` commands of a shell block (continuations joined, ``&&`` chains split)."""
    text = block.code.replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        for part in re.split(r"&&|;|\|\|", line):
            part = part.strip().removeprefix("$ ").strip()
            if part.startswith("ssl-featurizer"):
                out.append(part)
    return out


def test_command_line_samples_parse():
    from ssl_featurizer.cli import build_parser

    checked = 0
    for page in PAGES:
        for block in code_blocks(page):
            if block.lang not in ("bash", "console", "shell", "sh"):
                continue
            for command in _command_lines(block):
                if "..." in command:  # an abbreviated repeat of the line above
                    continue
                args = shlex.split(command, comments=True)[1:]
                try:
                    build_parser().parse_args(args)
                except SystemExit as exc:
                    pytest.fail(f"{_rel(page)}:{block.line}: `{command}` does not parse (exit {exc.code})")
                checked += 1
    assert checked >= 5


def test_skip_markers_are_rare():
    skipped = [f"{_rel(b.page)}:{b.line}" for p in PAGES for b in code_blocks(p) if b.marker == "skip-exec"]
    assert len(skipped) <= 3, f"too many illustrative-only samples: {skipped}"


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None, reason="mkdocs not installed: pip install -e '.[docs]'")
def test_site_builds_strict(tmp_path):
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")]
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # mkdocs-material's banner about mkdocs 2, not a build warning
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "site" / "reference" / "featurizers" / "index.html").exists()
    tutorial = (tmp_path / "site" / "tutorials" / "sklearn_pipeline" / "index.html").read_text()
    assert "GridSearchCV" in tutorial  # the snippet was included
