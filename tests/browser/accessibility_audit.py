"""The accessibility audit of the browser tests: axe-core (the copy the PyPI package axe-playwright-python ships,
injected from the disk: nothing is fetched) run on a page, reporting its serious and critical violations.

A unique module name, importable in any collection order (tests/browser is on sys.path through its conftest).
"""

from __future__ import annotations

from pathlib import Path

import pytest

BLOCKING = ("serious", "critical")  # axe's impact levels that fail a page; "minor" and "moderate" are reported only


def axe_source() -> str:
    """axe.min.js as shipped inside axe-playwright-python (the test skips with a reason when it is absent)."""
    package = pytest.importorskip("axe_playwright_python", reason="the accessibility audit needs axe-playwright-python "
                                                                 "(pip install -e '.[dev]')")
    return (Path(package.__file__).parent / "axe.min.js").read_text(encoding="utf-8")


def violations(page, impacts: tuple[str, ...] = BLOCKING) -> list[dict]:
    """axe's violations of the page as it is now (WCAG 2.x A and AA rules and best practices) of these impacts."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(axe_source())  # evaluated by the browser's devtools protocol: the page's CSP does not apply
    result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [v for v in result["violations"] if v.get("impact") in impacts]


def describe(found: list[dict]) -> str:
    """One line per violation: rule, impact, what it means, and the first offending elements."""
    lines = []
    for v in found:
        targets = "; ".join(" ".join(map(str, node["target"])) for node in v["nodes"][:4])
        lines.append(f"{v['id']} ({v['impact']}, {len(v['nodes'])}x): {v['help']} -- {targets}")
    return "\n".join(lines)


def scroll_through(page) -> None:
    """Scroll to the bottom and back so every lazy image loads and every widget has drawn."""
    page.evaluate("""async () => {
        for (let y = 0; y < document.body.scrollHeight; y += innerHeight / 2) {
            scrollTo(0, y); await new Promise(r => requestAnimationFrame(r));
        }
        scrollTo(0, 0);
        await new Promise(r => requestAnimationFrame(r));
        // let transitions end (Material's header title fades as the page scrolls): axe measures colours as shown
        const settled = Promise.all(document.getAnimations().map(a => a.finished.catch(() => null)));
        await Promise.race([settled, new Promise(r => setTimeout(r, 1500))]);
    }""")
