"""Render stage: escaping of prompt-file strings for every context a page puts them in.

Every string that comes from a prompt file (prompt text, compare text, set title, labels, model ids)
reaches a page through one of these, chosen by where it lands:

* HTML text and quoted attributes: Jinja autoescape (templates are rendered with ``autoescape=True``);
  inside a raw HTML block of a Markdown page, `html_block_text` (filter ``html``), which also writes line
  breaks as character references so a blank line cannot end the block;
* Markdown (a heading, a paragraph, a table cell): `md_escape`: every ASCII punctuation character
  becomes a numeric character reference, so no Markdown, attr_list (``{: onclick=...}``), link
  (``[x](javascript:...)``), table or Jinja syntax survives, and the text still reads exactly as written;
* Markdown front matter (``title:``): `front_matter_string`: a YAML double-quoted scalar of the
  HTML-escaped text, pure ASCII. The Material theme writes ``page.meta.title`` raw into ``<title>``, the
  header and the navigation, so the value must already be HTML;
* JSON inside an HTML attribute or a ``<script>``: `html_json`: ``<``, ``>``, ``&`` and ``'`` as
  ``\\u`` escapes, so neither ``</script>`` nor a quote can close the surrounding element;
* URLs: only the renderer's own relative URLs (`generator.render.paths.relurl`, percent-encoded) and slug
  ids (``[a-z0-9_-]``, checked by the spec) appear in ``href``/``src``; no prompt text becomes a URL.
"""

from __future__ import annotations

import json
from typing import Any

from markupsafe import Markup, escape

# Markdown's backslash escapes (Python-Markdown's ESCAPED_CHARS plus '|' from the tables extension)
_BACKSLASH_ESCAPABLE = frozenset("\\`*_{}[]()#+-.!|")


def _char_ref(char: str) -> str:
    """The numeric character reference of one character: '<' -> '&#60;'."""
    return f"&#{ord(char)};"


def md_escape(text: Any) -> Markup:
    """Escape text for Markdown inline context (and HTML): it renders literally, never as markup.

    HTML's special characters become entities, Markdown's syntax characters get a backslash (so emphasis,
    links, code, headings, tables and attr_list braces stay text), and line breaks, tabs and '~' (which
    Markdown cannot backslash-escape) become numeric character references. For raw HTML blocks use plain
    autoescaping instead: Markdown does not remove backslashes there.
    """
    out = []
    for char in str(text):
        if char in _BACKSLASH_ESCAPABLE:
            out.append("\\" + char)
        elif char == "~" or ord(char) < 32 or ord(char) == 127:
            out.append(_char_ref(char))
        else:
            out.append(str(escape(char)))
    return Markup("".join(out))


def html_text_ascii(text: Any) -> str:
    """HTML-escape text and write every non-ASCII or control character as a character reference.

    The result is printable ASCII, so it passes through YAML, JSON and the theme's templates unchanged.
    """
    out = []
    for char in str(text):
        code = ord(char)
        if char in "<>&\"'" or code < 32 or code >= 127:
            out.append(f"&#x{code:x};" if code > 127 else _char_ref(char))
        else:
            out.append(char)
    return "".join(out)


def html_block_text(text: Any) -> Markup:
    """Text inside a raw HTML block of a Markdown page: escaped, with line breaks as character references.

    A blank line ends a raw HTML block, after which Markdown would read the rest of the prompt as Markdown
    (``[x](javascript:...)`` would become a link); as ``&#10;`` the text stays inside the block.
    """
    return Markup(html_text_ascii(text))


def front_matter_string(text: Any) -> Markup:
    """A YAML double-quoted scalar whose value is the HTML-escaped text (for ``title:`` in front matter)."""
    return Markup(json.dumps(html_text_ascii(text), ensure_ascii=True))


def html_json(value: Any) -> Markup:
    """JSON safe inside a single-quoted HTML attribute or a ``<script>``: no ``<``, ``>``, ``&`` or ``'`` left."""
    text = json.dumps(value, ensure_ascii=False)
    for char, code in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e"), ("'", "\\u0027"),
                       ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, code)
    return Markup(text)
