"""Evaluate stage: the shapes judge. Reads a prompt of the shapes world back into the scene it asks
for, and tells, claim by claim, whether an image shows it: asked vs found.

Claims are what a reader checks by eye, not the checker's separate attributes:

* ``object``: each named object is there with both its colour and its shape ("red circle" ✓, or ✗ with what
  stands in its place, "a red square"): binding, the weak spot of attribute-by-attribute scores;
* ``size``, ``position``, ``relation``: as the caption states them;
* ``count``: the number asked ("3 green triangles"), or for other captions that nothing else was drawn.

A prompt outside the world's grammar is not judged (``parse_caption`` returns None), so a page never shows a
verdict the judge cannot back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from generator.builtin.shapes.world import (
    COLOURS,
    COUNT_WORDS,
    PLURALS,
    POSITION_PHRASES,
    RELATION_PHRASES,
    SHAPES,
    SINGLE_PREFIXES,
    SIZES,
    Scene,
    ShapeObject,
    relation_holds,
)
from generator.evaluate.shapes_checker import Blob, find_blobs, match, position_holds

_COLOUR = "|".join(COLOURS)
_SHAPE = "|".join(SHAPES)
_SIZE = "|".join(SIZES)
_NOUN_PHRASE = rf"(?:an? )?(?:(?P<size{{n}}>{_SIZE}) )?(?P<colour{{n}}>{_COLOUR}) (?P<shape{{n}}>{_SHAPE})"


def _phrases(table: dict[str, tuple[str, ...]]) -> str:
    """Alternation of every phrase, longest first (so "to the left of" wins over "left of")."""
    return "|".join(sorted((re.escape(p) for ps in table.values() for p in ps), key=len, reverse=True))


def _noun(n: int) -> str:
    return _NOUN_PHRASE.format(n=n)


_PREFIX = "(?:" + "|".join(re.escape(p) for p in SINGLE_PREFIXES if p) + ")?"
GRAMMAR: dict[str, re.Pattern[str]] = {
    "single": re.compile(rf"^{_PREFIX}{_noun(1)}(?: (?P<position>{_phrases(POSITION_PHRASES)}))?$"),
    "pair": re.compile(rf"^{_noun(1)} (?:and|with) {_noun(2)}$"),
    "relation": re.compile(rf"^{_noun(1)} (?P<relation>{_phrases(RELATION_PHRASES)}) {_noun(2)}$"),
    "count": re.compile(rf"^(?P<count>{'|'.join(COUNT_WORDS.values())}) (?:(?P<size1>{_SIZE}) )?(?P<colour1>{_COLOUR}) "
                        rf"(?P<plural>{'|'.join(PLURALS.values())})$"),
    "triple": re.compile(rf"^{_noun(1)} , {_noun(2)} and {_noun(3)}$"),
}
_PHRASE_MEANING = {p: name for table in (POSITION_PHRASES, RELATION_PHRASES) for name, ps in table.items() for p in ps}


def _object(match_: re.Match[str], n: int, shape: str | None = None) -> ShapeObject:
    """An object of the asked scene (its place is unknown: the judge reads positions from the caption)."""
    size = match_.group(f"size{n}")
    return ShapeObject(shape or match_.group(f"shape{n}"), match_.group(f"colour{n}"), size or "small", 0.5, 0.5, 0.0)


def parse_caption(text: str) -> Scene | None:
    """The scene a prompt of the world's grammar asks for, or None (not judged)."""
    caption = " ".join(text.lower().replace(",", " , ").split())  # one space between words, commas apart
    for layout, pattern in GRAMMAR.items():
        found = pattern.match(caption)
        if found is None:
            continue
        groups = found.groupdict()
        size_stated = any(groups.get(f"size{n}") for n in (1, 2, 3))
        if layout == "count":
            shape = next(s for s, plural in PLURALS.items() if plural == groups["plural"])
            number = next(k for k, word in COUNT_WORDS.items() if word == groups["count"])
            objects = tuple(_object(found, 1, shape) for _ in range(number))
            return Scene(objects, text, layout, size_stated)
        count = {"single": 1, "pair": 2, "relation": 2, "triple": 3}[layout]
        objects = tuple(_object(found, n) for n in range(1, count + 1))
        if size_stated and not all(groups.get(f"size{n}") for n in range(1, count + 1)):
            return None  # the world states sizes for every object or for none
        position = _PHRASE_MEANING.get(groups.get("position") or "")
        relation = _PHRASE_MEANING.get(groups.get("relation") or "")
        return Scene(objects, text, layout, size_stated, position=position, relation=relation)
    return None


@dataclass(frozen=True)
class Claim:
    """One thing the prompt asks for, and what the image shows instead (or the same)."""

    kind: str  # object | size | position | relation | count
    asked: str  # "red circle", "above", "3 green triangles"
    found: str  # "red circle", "a red square", "nothing", "below"
    correct: bool

    def to_json(self) -> dict:
        """Plain JSON (sorted by the caller)."""
        return {"kind": self.kind, "asked": self.asked, "found": self.found, "correct": bool(self.correct)}


def _seen(blob: Blob | None) -> str:
    return "nothing" if blob is None else f"{'an' if blob.colour[0] in 'aeiou' else 'a'} {blob.colour} {blob.shape}"


def _where(blob: Blob) -> str:
    """The regions a blob's centre lies in, for a wrong position ("right", "top right", "center")."""
    regions = [p for p in ("top", "bottom", "left", "right") if position_holds(p, blob)]
    return " ".join(regions) if regions else "center"


def _relation_seen(a: Blob, b: Blob) -> str:
    """The relation that does hold between two blobs (the strongest axis)."""
    dx, dy = b.center_x - a.center_x, b.center_y - a.center_y
    if abs(dx) >= abs(dy):
        return "left of" if dx > 0 else "right of"
    return "above" if dy > 0 else "below"


def judge_scene(scene: Scene, image: np.ndarray) -> tuple[Claim, ...]:
    """Every claim of ``scene`` scored against an (H, W, 3) uint8 image."""
    blobs = find_blobs(image)
    claims: list[Claim] = []
    if scene.layout == "count":
        obj = scene.objects[0]
        kind = f"{obj.colour} {PLURALS[obj.shape]}"
        found = sum(1 for b in blobs if b.colour == obj.colour and b.shape == obj.shape)
        claims.append(Claim("count", f"{len(scene.objects)} {kind}", f"{found} {kind}", found == len(scene.objects)))
        return tuple(claims)
    matched = match(scene, blobs)
    for obj, blob in zip(scene.objects, matched):
        bound = blob is not None and blob.colour == obj.colour and blob.shape == obj.shape
        asked = f"{obj.colour} {obj.shape}"
        claims.append(Claim("object", asked, asked if bound else _seen(blob), bound))
        if scene.size_stated:
            size_right = bound and blob.size == obj.size
            claims.append(Claim("size", f"{obj.size} {asked}", f"{blob.size} {asked}" if bound else _seen(blob), size_right))
    if scene.position is not None:
        blob = matched[0]
        right = blob is not None and position_holds(scene.position, blob)
        claims.append(Claim("position", scene.position, _where(blob) if blob is not None else "nothing", right))
    if scene.relation is not None:
        a, b = matched
        right = a is not None and b is not None and relation_holds(scene.relation, (a.center_x, a.center_y), (b.center_x, b.center_y))
        seen = _relation_seen(a, b) if a is not None and b is not None else "one object missing"
        claims.append(Claim("relation", scene.relation, scene.relation if right else seen, right))
    wanted, drawn = len(scene.objects), len(blobs)
    claims.append(Claim("count", _objects(wanted), _objects(drawn), drawn == wanted))
    return tuple(claims)


def _objects(count: int) -> str:
    return f"{count} object" + ("" if count == 1 else "s")


def judge_prompt(text: str, image: np.ndarray) -> tuple[Claim, ...] | None:
    """Claims of a free prompt against an image; None when the prompt is outside the world's grammar."""
    scene = parse_caption(text)
    return None if scene is None else judge_scene(scene, image)
