"""mkdocs hooks of the documentation site (see ``hooks:`` in mkdocs.yml).

1. Repository files outside ``docs/`` that a page links with a relative path (``../studies/results/
   <task>/mae.png``; the same link works on a code host) are copied into the site under ``_repo/`` and the
   page's link is rewritten to that copy, so the benchmark figures, written where the benchmark runs put
   them, appear on the site without duplicating them in the repository.
2. ``<!-- cli-help -->`` in a page is replaced by the ``--help`` text of every ``ssl-featurizer``
   sub-command, generated from the argument parser itself, so the command-line reference cannot drift.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

LINK = re.compile(r"(\]\()([^)\s#]+)((?:#[^)\s]*)?\))")
PREFIX = "_repo"
_linked: dict[tuple[str, str], str] = {}  # (page src_uri, link as written) -> rewritten link


def _repo_target(page_uri: str, link: str, docs_dir: Path, root: Path) -> Path | None:
    """The repository file a relative link of a page points at, if it lies outside docs/."""
    if "://" in link or link.startswith(("/", "mailto:")) or not link.startswith(".."):
        return None
    target = (docs_dir / posixpath.dirname(page_uri) / link).resolve()
    try:
        target.relative_to(docs_dir)
        return None  # inside docs/: mkdocs handles it
    except ValueError:
        pass
    try:
        target.relative_to(root)
    except ValueError:
        return None
    return target if target.is_file() and target.suffix != ".md" else None


def on_files(files: Any, config: Any) -> Any:
    """Add the repository files that pages link to (outside docs/) as generated site files."""
    from mkdocs.structure.files import File

    docs_dir = Path(config["docs_dir"]).resolve()
    root = Path(config["config_file_path"]).resolve().parent
    _linked.clear()
    added: set[str] = set()
    for page in list(files.documentation_pages()):
        text = Path(page.abs_src_path).read_text(encoding="utf-8")
        for _, link, _ in LINK.findall(text):
            target = _repo_target(page.src_uri, link, docs_dir, root)
            if target is None:
                continue
            uri = f"{PREFIX}/{target.relative_to(root).as_posix()}"
            _linked[(page.src_uri, link)] = posixpath.relpath(uri, posixpath.dirname(page.src_uri) or ".")
            if uri not in added:
                added.add(uri)
                files.append(File.generated(config, uri, abs_src_path=str(target)))
    return files


def _cli_help() -> str:
    from ssl_featurizer.cli import build_parser

    parser = build_parser()
    blocks = [f"```text\n{parser.format_help().rstrip()}\n```"]
    subparsers = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, sub in subparsers.choices.items():
        blocks.append(f"## `ssl-featurizer {name}`\n\n```text\n{sub.format_help().rstrip()}\n```")
    return "\n\n".join(blocks)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Rewrite links to repository files; expand ``<!-- cli-help -->``."""
    uri = page.file.src_uri

    def rewrite(m: re.Match) -> str:
        new = _linked.get((uri, m.group(2)))
        return m.group(0) if new is None else f"{m.group(1)}{new}{m.group(3)}"

    markdown = LINK.sub(rewrite, markdown)
    if "<!-- cli-help -->" in markdown:
        markdown = markdown.replace("<!-- cli-help -->", _cli_help())
    return markdown
