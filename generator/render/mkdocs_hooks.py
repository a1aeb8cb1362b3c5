"""Render stage (MkDocs side): hooks that put the Content-Security-Policy on every page and audit the result.

Registered in mkdocs.yml (``hooks:``), together with the theme override in generator/render/theme/
that writes the policy as the first element of ``<head>``. For every page (and the 404 page) the hooks

* refuse a page title that is not already HTML: Material writes ``page.title``/``page.meta.title``
  raw into ``<title>``, the header and the navigation (the render stage writes titles HTML-escaped);
* compute the policy from the theme's own inline scripts (generator/render/csp.py);
* read the finished HTML and fail the build on an inline script the policy would block, an inline
  event handler, a ``javascript:`` URL or a missing policy.
"""

from __future__ import annotations

import html
import re
from typing import Any

from mkdocs.exceptions import PluginError

from generator.render.csp import audit_page, policy, theme_script_hashes

_CONTEXT_KEY = "atlas_csp"
_UNESCAPED = re.compile(r"[<>\"]|&(?!(?:#[0-9]+|#x[0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);)")


def _allowed_and_policy(context: dict[str, Any], config: Any) -> tuple[frozenset[str], str]:
    """The theme's inline-script hashes for this context and the policy built from them."""
    env = config.theme.get_env()
    render_context = {**context, "features": config.theme.get("features") or []}
    allowed = theme_script_hashes(env, render_context)
    return allowed, policy(allowed)


def check_title(title: str | None, where: str) -> None:
    """Refuse a page title the theme would write raw as HTML with markup or a bare '&' in it."""
    if title and _UNESCAPED.search(title):
        raise PluginError(f"{where}: page title {title!r} is not HTML-escaped; the theme writes it raw into <title> "
                          "and the header (write it as e.g. &#60; for '<')")


PROMPT_PAGES = "generated/pages/"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Keep prompt pages out of the search index (before the search plugin reads the page).

    Every prompt page repeats the same explanations (about 20 KB of index each) and Material loads the whole
    index on every page: at 1,000 prompts each page loaded 23 MB. Prompts are found by their words in the
    gallery instead (its cards' text stays in the index, and its filter: site/assets/js/gallery.js).
    """
    if page.file.src_uri.startswith(PROMPT_PAGES):
        page.meta.setdefault("search", {"exclude": True})
    return markdown


def on_page_context(context: dict[str, Any], page: Any, config: Any, nav: Any) -> dict[str, Any]:
    """Check the title and put this page's policy in the template context."""
    check_title(page.title, page.file.src_uri)
    if page.meta.get("title") is not None:
        check_title(str(page.meta["title"]), page.file.src_uri)
    allowed, content = _allowed_and_policy(context, config)
    context[_CONTEXT_KEY] = content
    page.atlas_csp = (allowed, content)  # read back by on_post_page
    return context


def on_post_page(output: str, page: Any, config: Any) -> str:
    """Fail the build when the finished page breaks its own policy."""
    allowed, content = page.atlas_csp
    problems = audit_page(output, allowed, content)
    if problems:
        raise PluginError(f"{page.file.src_uri}: " + "; ".join(problems))
    return output


def on_template_context(context: dict[str, Any], template_name: str, config: Any) -> dict[str, Any]:
    """Static theme pages (404.html) get the policy too."""
    if not template_name.endswith(".html"):
        return context
    context[_CONTEXT_KEY] = _allowed_and_policy(context, config)[1]
    return context


def on_post_template(output_content: str, template_name: str, config: Any) -> str:
    """Audit the static theme pages like the others (their hashes are recomputed from the same context)."""
    if not template_name.endswith(".html"):
        return output_content
    match = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">', output_content)
    if not match:
        raise PluginError(f"{template_name}: no Content-Security-Policy <meta> (is the theme override in place?)")
    content = html.unescape(match.group(1))
    allowed = frozenset(re.findall(r"'sha256-[A-Za-z0-9+/=]+'", content))
    problems = audit_page(output_content, allowed, content)
    if problems:
        raise PluginError(f"{template_name}: " + "; ".join(problems))
    return output_content
