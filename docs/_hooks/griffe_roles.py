"""griffe extension of the docs build: render the Sphinx roles of the docstrings as cross-references.

The docstrings are Google style with Sphinx-style roles (``:func:`load_model```, ``:class:`~a.b.C```),
which read well in ``help()``. Here each role becomes an optional autorefs link to the object it names
(resolved from the docstring's scope, like Sphinx would) with the text Sphinx would show; when the target is
not on the site, the text stays plain inline code. ``.. math::`` blocks and ``:math:`` roles become math.
"""

from __future__ import annotations

import re
import textwrap
from typing import Any

import griffe

ROLE = re.compile(r":(?:func|class|mod|meth|attr|data|exc|obj):`(?P<tilde>~?)(?P<target>[\w.]+)(?:\(\))?`")
LITERAL = re.compile(r"(\S)::\n\n(?=[ \t]+\S)")
INLINE_MATH = re.compile(r":math:`(?P<tex>[^`]+)`")
MATH = re.compile(r"^(?P<indent>[ \t]*)\.\. math::[ \t]*\n(?P<body>(?:(?P=indent)[ \t]+\S.*\n|[ \t]*\n)+)", re.MULTILINE)


def _lookup(collection: Any, path: str) -> Any:
    try:
        obj = collection[path]
    except (KeyError, ValueError, AttributeError, griffe.AliasResolutionError):
        return None
    try:
        return obj.final_target if obj.is_alias else obj
    except (griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None


def _resolve(target: str, scope: Any, collection: Any) -> str | None:
    """Canonical path of ``target`` as seen from ``scope`` (its object, parents, then its module)."""
    if target.startswith("ssl_featurizer"):
        found = _lookup(collection, target)
        return None if found is None else found.path
    head, _, rest = target.partition(".")
    node = scope
    while node is not None:
        member = node.members.get(head) if hasattr(node, "members") else None
        if member is not None:
            try:
                base = member.final_target.path if member.is_alias else member.path
            except (griffe.AliasResolutionError, griffe.CyclicAliasError):
                return None
            found = _lookup(collection, f"{base}.{rest}" if rest else base)
            return None if found is None else found.path
        node = node.parent
    return None


def _rewrite(text: str, scope: Any, collection: Any) -> str:
    def role(m: re.Match) -> str:
        target = m["target"]
        shown = target.rsplit(".", 1)[-1] if m["tilde"] else target
        path = _resolve(target, scope, collection)
        if path is None:
            return f"`{shown}`"
        return f'<autoref identifier="{path}" optional><code>{shown}</code></autoref>'

    def math(m: re.Match) -> str:
        body = textwrap.dedent(m["body"]).strip("\n")
        return f"{m['indent']}$$\n{textwrap.indent(body, m['indent'])}\n{m['indent']}$$\n\n"

    text = LITERAL.sub(r"\1:\n\n", text)  # reST "Usage::" before an indented (code) block
    text = INLINE_MATH.sub(lambda m: rf"\({m['tex']}\)", MATH.sub(math, text))
    return ROLE.sub(role, text)


class SphinxRoles(griffe.Extension):
    """Rewrite the roles and math directives of every docstring of a package once it is loaded."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        collection = loader.modules_collection
        stack: list[Any] = [pkg]
        while stack:
            obj = stack.pop()
            if obj.docstring is not None and (":" in obj.docstring.value or ".. math" in obj.docstring.value):
                obj.docstring.value = _rewrite(obj.docstring.value, obj, collection)
            stack.extend(m for m in obj.members.values() if not m.is_alias)
