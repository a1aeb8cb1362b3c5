"""Render stage: the sites' Content-Security-Policy and the audit of every built page against it.

The policy is a ``<meta http-equiv="Content-Security-Policy">`` (so it holds from file:// too):
scripts only from the site itself (``'self'``) plus the SHA-256 hashes of the theme's own inline
scripts. Those hashes are computed from the theme's templates (Material's
``partials/javascripts/*.html``, rendered with the page's own ``base_url`` and config), never from
the page being built, so an inline script that reached a page from data is never allowed. Embed
pages carry no inline script at all and get ``script-src 'self'`` alone.

`audit_page` reads a finished page and names what the policy would block or what should not be
there: an inline script whose hash is not allowed, an inline event handler (``onclick=``...), a
``javascript:`` URL, a missing policy. The MkDocs hook (generator/render/mkdocs_hooks.py) fails the
build on any of them, so a missed escape is caught at build time as well as blocked in the browser.
"""

from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser
from typing import Any, Iterable

from jinja2 import Environment

THEME_SCRIPT_PARTIALS = "partials/javascripts/"  # Material's inline snippets live here, one per file
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)
_URL_ATTRIBUTES = frozenset({"href", "src", "action", "formaction", "xlink:href", "data", "poster"})


def script_hash(source: str) -> str:
    """The CSP source expression of an inline script's text: 'sha256-<base64>'."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode("utf-8")).digest()).decode("ascii") + "'"


def policy(script_hashes: Iterable[str] = ()) -> str:
    """The Content-Security-Policy of a page whose only inline scripts have these hashes."""
    scripts = " ".join(["'self'", *sorted(set(script_hashes))])
    return "; ".join([
        "default-src 'none'",
        f"script-src {scripts}",
        "worker-src 'self'",  # Material's search runs in a worker loaded from the site
        "connect-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self'",
        "style-src 'self' 'unsafe-inline'",  # style attributes position sprites; styles cannot run script
        "font-src 'self' data:",
        "frame-src 'self'",
        "base-uri 'self'",
        "form-action 'self'",
    ])


def meta_tag(content: str) -> str:
    """The ``<meta>`` element carrying a policy (the policy holds only ASCII without quotes or angle brackets)."""
    if re.search(r"[\"<>&]", content):
        raise ValueError(f"unexpected character in a Content-Security-Policy: {content!r}")
    return f'<meta http-equiv="Content-Security-Policy" content="{content}">'


EMBED_POLICY = policy()


def theme_script_hashes(env: Environment, context: dict[str, Any]) -> frozenset[str]:
    """Hashes of every inline script in the theme's script partials, rendered with this page's context."""
    hashes = set()
    names = [name for name in env.list_templates() if name.startswith(THEME_SCRIPT_PARTIALS) and name.endswith(".html")]
    if not names:
        raise LookupError(f"the theme has no {THEME_SCRIPT_PARTIALS}*.html templates to take inline-script hashes from")
    for name in sorted(names):
        rendered = env.get_template(name).render(context)
        hashes.update(script_hash(source) for source in _INLINE_SCRIPT.findall(rendered))
    return frozenset(hashes)


class _Audit(HTMLParser):
    """Collects what a page's CSP would block or should never contain."""

    def __init__(self, allowed: frozenset[str]) -> None:
        super().__init__(convert_charrefs=True)
        self.allowed = allowed
        self.problems: list[str] = []
        self.policies: list[str] = []
        self._script: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"inline event handler {name}= on <{tag}>")
            url = re.sub(r"[\s\x00-\x1f]", "", value) if name in _URL_ATTRIBUTES and value else ""
            if url.lower().startswith("javascript:"):
                self.problems.append(f"javascript: URL in {name}= on <{tag}>")
        if tag == "meta" and (values.get("http-equiv") or "").lower() == "content-security-policy":
            self.policies.append(values.get("content") or "")
        if tag == "script" and "src" not in values and (values.get("type") or "") not in ("application/json",):
            self._script = []

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self._script.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._script is not None:
            source, self._script = "".join(self._script), None
            if script_hash(source) not in self.allowed:
                self.problems.append(f"inline script not among the theme's own: {source[:80]!r}")


def audit_page(html: str, allowed: frozenset[str], expected_policy: str) -> list[str]:
    """What is wrong with a built page: unknown inline scripts, event handlers, javascript: URLs, a missing CSP."""
    audit = _Audit(allowed)
    audit.feed(html)
    audit.close()
    if audit.policies != [expected_policy]:
        audit.problems.append(f"expected exactly one Content-Security-Policy <meta>, found {len(audit.policies)}")
    head = html[: html.find("<script")] if "<script" in html else html
    if audit.policies and 'http-equiv="Content-Security-Policy"' not in head:
        audit.problems.append("the Content-Security-Policy <meta> comes after a script")
    return audit.problems
