"""Render stage: the judge's verdicts on published figures, as pages show them and as the build counts them.

The bake stage stores a verdict next to every image entry it judged (``{"src": ..., "verdict": {...}}``, see
``$defs/verdict`` in generator/manifest/prompt.schema.json). This module

* words one verdict the same way everywhere: ``verdict_view`` feeds the ``verdict_line`` macro of
  ``templates/verdict.html.j2`` and ``verdict_text`` is the same line as plain text (quality.json, the build's
  error line, tests);
* finds every verdict by walking each manifest (any object with a ``verdict`` key, whatever the chapter) and
  collects them into a ``QualityReport``: what ``site/generated/quality.json`` and the quality page list and
  what ``diffatlas build`` sums up (and fails on, when a figure disagrees without ``expect: fail``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

RIGHT, WRONG = "✓", "✗"
MOST_LISTED = 8  # a verdict with more claims (a sample grid) is tallied, listing only its first wrong ones
STATUS_LABELS = {"agrees": "agrees", "disagrees": "disagrees", "expected": "expected failure"}
JUDGE_NAMES = {"shapes": "the shapes checker", "digits": "the digit classifier"}


def verdict_status(verdict: dict[str, Any]) -> str:
    """'agrees', 'expected' (disagrees, as its prompt file said it would) or 'disagrees' (unexpectedly)."""
    if verdict["agrees"]:
        return "agrees"
    return "expected" if _expected(verdict) else "disagrees"


def _expected(verdict: dict[str, Any]) -> bool:
    """True when the prompt file marked this figure ``expect: fail``."""
    return (verdict.get("expect") or {}).get("outcome") == "fail"


def _one_line(text: Any) -> str:
    """Text with every run of whitespace (newlines too) made one space: a line stays one raw-HTML line in Markdown."""
    return " ".join(str(text).split())


def verdict_view(verdict: dict[str, Any]) -> dict[str, Any]:
    """What the ``verdict_line`` macro draws: status, its words for screen readers, asked, claims, reason."""
    status = verdict_status(verdict)
    expect = verdict.get("expect") or {}
    judge = JUDGE_NAMES.get(verdict.get("judge", ""), "the judge")
    spoken = {"agrees": f"Checked by {judge}: the image agrees with its prompt.",
              "disagrees": f"Checked by {judge}: the image does not agree with its prompt.",
              "expected": f"Checked by {judge}: the image does not agree with its prompt, as expected."}[status]
    claims = [{"asked": _one_line(c["asked"]), "found": _one_line(c["found"]), "correct": bool(c["correct"])}
              for c in verdict["claims"]]
    tally, more = "", 0
    if len(claims) > MOST_LISTED:  # e.g. 40 digits of a grid: "37 of 40 right" and the wrong ones
        wrong = [c for c in claims if not c["correct"]]
        tally = f"{len(claims) - len(wrong)} of {len(claims)} right"
        claims, more = wrong[:MOST_LISTED], max(0, len(wrong) - MOST_LISTED)
    return {
        "status": status,
        "label": STATUS_LABELS[status],
        "spoken": spoken,
        "asked": _one_line(verdict["asked"]),
        "tally": tally,
        "claims": claims,
        "more": more,
        "expected": _expected(verdict),
        # a figure marked expect: fail that agrees after all says so (its marker may be out of date)
        "expect_words": "expected failure" if status == "expected" else "marked expected failure, but agrees",
        "reason": _one_line(expect.get("reason", "")),
    }


def claim_text(claim: dict[str, Any]) -> str:
    """'red circle ✓' or 'blue square ✗ (a red square)'."""
    if claim["correct"]:
        return f"{claim['asked']} {RIGHT}"
    return f"{claim['asked']} {WRONG} ({claim['found']})"


def verdict_text(verdict: dict[str, Any]) -> str:
    """The verdict line as text: 'asked: … · found: red circle ✓, above ✗ (below) · expected failure: …'."""
    view = verdict_view(verdict)
    found = ([view["tally"]] if view["tally"] else []) + [claim_text(c) for c in view["claims"]]
    if view["more"]:
        found.append(f"{view['more']} more wrong")
    line = f"asked: {view['asked']} · found: " + ", ".join(found)
    if view["expected"]:
        line += f" · {view['expect_words']}: {view['reason']}"
    return line


def find_verdicts(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], dict]]:
    """Every (path, image entry) in a manifest whose entry carries a verdict, in document order."""
    if isinstance(value, dict):
        verdict = value.get("verdict")
        if isinstance(verdict, dict) and {"asked", "claims", "agrees"} <= set(verdict):
            yield path, value
        for key in sorted(value):
            if key != "verdict":
                yield from find_verdicts(value[key], (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from find_verdicts(item, (*path, i))


def json_pointer(path: tuple[str | int, ...]) -> str:
    """RFC 6901 pointer of a path: ('variants', 'items', 2, 'final') -> '/variants/items/2/final'."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


@dataclass(frozen=True)
class JudgedFigure:
    """One judged image: where it is published and what the judge said."""

    page: str  # the built page, relative to the generated dir: "pages/red-circle.html", "course.html"
    title: str  # the page's title
    manifest: str  # the manifest, relative to the generated dir: "prompts/red-circle.json"
    path: tuple[str | int, ...]  # the image entry's place in the manifest
    src: str
    verdict: dict[str, Any]

    @property
    def pointer(self) -> str:
        """The entry's JSON pointer within its manifest."""
        return json_pointer(self.path)

    @property
    def status(self) -> str:
        """agrees, expected or disagrees."""
        return verdict_status(self.verdict)

    def sort_key(self) -> tuple:
        """Page, manifest, then place in the manifest (list indices as numbers)."""
        return (self.page, self.manifest, tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in self.path))

    def to_json(self) -> dict[str, Any]:
        """This figure's entry in quality.json."""
        v = self.verdict
        expect = v.get("expect") or {}
        return {"page": self.page, "title": self.title, "manifest": self.manifest, "path": self.pointer,
                "src": self.src, "judge": v.get("judge"), "asked": v["asked"], "agrees": bool(v["agrees"]),
                "status": self.status, "expected_failure": _expected(v), "reason": expect.get("reason"),
                "line": verdict_text(v), "claims": v["claims"]}


@dataclass(frozen=True)
class QualityReport:
    """Every judged figure of a render, sorted; the counts the build prints and fails on."""

    figures: tuple[JudgedFigure, ...] = field(default_factory=tuple)

    @property
    def judged(self) -> int:
        """How many figures were judged."""
        return len(self.figures)

    @property
    def agree(self) -> int:
        """How many agree with their prompt."""
        return sum(f.verdict["agrees"] for f in self.figures)

    @property
    def expected(self) -> int:
        """How many disagree as their prompt file said they would (``expect: fail``); a marked figure that agrees
        after all counts among those that agree, so agree + expected + unexpected = judged."""
        return sum(f.status == "expected" for f in self.figures)

    @property
    def unexpected(self) -> tuple[JudgedFigure, ...]:
        """The figures that disagree although nothing said they would: each one fails the build."""
        return tuple(f for f in self.figures if f.status == "disagrees")

    def summary(self) -> str:
        """'41 of 44 judged figures agree with their prompt; 3 are marked expected failures'."""
        if not self.judged:
            return "no figure was judged (none of the baked models has a judge)"
        noun = "figure agrees with its prompt" if self.judged == 1 else "figures agree with their prompt"
        line = f"{self.agree} of {self.judged} judged {noun}"
        verb, plural = ("is", "") if self.expected == 1 else ("are", "s")
        line += f"; {self.expected} {verb} marked expected failure{plural}"
        if self.unexpected:
            n = len(self.unexpected)
            line += f"; {n} disagree{'s' * (n == 1)} unexpectedly"
        return line

    def failure(self) -> str | None:
        """The build's one error line when a figure disagrees unexpectedly (None when none does)."""
        if not self.unexpected:
            return None
        first, more = self.unexpected[0], len(self.unexpected) - 1
        others = f" (and {more} more; all in quality.json)" if more else ""
        return (f"{first.page} ({first.pointer}) disagrees with its prompt: {verdict_text(first.verdict)}{others}; "
                "fix it, or mark its prompt 'expect: fail' with a 'reason' to show the failure on purpose")

    def to_json(self) -> dict[str, Any]:
        """quality.json: the counts and every judged figure, sorted."""
        return {"schema": 1, "summary": self.summary(), "judged": self.judged, "agree": self.agree,
                "expected_failures": self.expected, "unexpected": len(self.unexpected),
                "figures": [f.to_json() for f in self.figures]}


def judged_figures(page: str, title: str, manifest_path: str, manifest: Any) -> list[JudgedFigure]:
    """Every judged image of one manifest, published on ``page``."""
    return [JudgedFigure(page, title, manifest_path, path, str(entry.get("src", "")), entry["verdict"])
            for path, entry in find_verdicts(manifest)]


def quality_report(figures: list[JudgedFigure]) -> QualityReport:
    """The report of these figures, sorted by page, manifest and place (deterministic)."""
    return QualityReport(tuple(sorted(figures, key=JudgedFigure.sort_key)))
