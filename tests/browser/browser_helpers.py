"""Browser test helpers shared by every widget test (a unique module name: importable in any collection order)."""

from __future__ import annotations

import functools
import http.server
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve ``directory`` on 127.0.0.1 (a free port) while the block runs; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class Watched:
    """A page plus everything it logged and requested."""

    def __init__(self, page, base_url: str):
        self.page = page
        self.errors: list[str] = []
        self.foreign: list[str] = []
        self.failed: list[str] = []
        page.on("console", lambda m: m.type in ("error", "warning") and self.errors.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        page.on("request", lambda r: r.url.startswith((base_url, "data:", "blob:")) or self.foreign.append(r.url))
        page.on("response", lambda r: r.status >= 400 and self.failed.append(f"{r.status} {r.url}"))

    def assert_clean(self):
        assert self.errors == [], self.errors
        assert self.foreign == [], f"requests left 127.0.0.1: {self.foreign}"
        assert self.failed == [], self.failed


@contextmanager
def watched_page(browser, base_url: str, **context_options) -> Iterator[Watched]:
    """A fresh 1000x900 browser context with one watched page (10 s timeouts), closed when the block ends."""
    context = browser.new_context(**{"viewport": {"width": 1000, "height": 900}, **context_options})
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        yield Watched(page, base_url)
    finally:
        context.close()
