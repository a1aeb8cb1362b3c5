"""Bake stage: every chapter figure as files for slides: a PNG, the animations as GIF and MP4, a caption text file.

A course author drops a figure into a slide deck without a screenshot: ``download(...)`` stores the figure's PNG
(composed here from the figure's images, with plain labels), its animation as GIF and MP4 when it has one
(generator/bake/encoders.py, as prompt pages do) and a UTF-8 caption file that names the figure and says what it
shows, and returns the manifest entry the page links (``downloads`` of each figure, see chapters.schema.json).

Labels drawn into PNGs use Pillow's bundled font (the same bytes on every machine, so the same inputs give the same
files), which has no Greek letters or typographic quotes: ``plain`` spells them out. The caption file keeps the
exact text.
"""

from __future__ import annotations

from typing import Sequence

from PIL import Image, ImageDraw, ImageFont

from generator.bake.encoders import gif_bytes, mp4_bytes, preview_size
from generator.bake.prompt.trajectory import image_entry
from generator.bake.store import AssetStore

BACKGROUND = (255, 255, 255)
INK = (30, 30, 30)
FONT_SIZE = 14
PAD = 8
MAX_LABEL = 300  # widest label under an image before it wraps, pixels
MAX_TITLE = 900  # widest title line before it wraps (a sheet narrower than this widens to fit its title)
ANIMATION_SIDE = 256  # the longer side of one animation frame panel in the GIF/MP4, pixels
SPELLED = {"×": "x", "σ": "sigma", "γ": "gamma", "ε": "eps", "ᾱ": "alpha_bar", "“": '"', "”": '"', "’": "'",
           "°": " deg", "·": "-", "—": "-", "–": "-", "✓": "(right)", "✗": "(wrong)", "≥": ">=", "≤": "<=", "→": "->"}


def font(size: int = FONT_SIZE) -> ImageFont.FreeTypeFont:
    """Pillow's bundled font at ``size`` pixels."""
    return ImageFont.load_default(size=size)


def plain(text: str) -> str:
    """``text`` with the characters the bundled font lacks spelled out (anything else outside ASCII as '?')."""
    spelled = "".join(SPELLED.get(ch, ch) for ch in text)
    return "".join(ch if ch.isascii() else "?" for ch in spelled)


def _text_size(text: str, size: int = FONT_SIZE) -> tuple[int, int]:
    left, top, right, bottom = font(size).getbbox(plain(text) or " ")
    return right - left, size + 4


def wrap(text: str, width: int, size: int = FONT_SIZE) -> list[str]:
    """``text`` (spelled out) broken at spaces into lines at most ``width`` pixels wide (a longer word stays whole)."""
    lines: list[str] = []
    for word in plain(text).split():
        if lines and font(size).getlength(f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


def _write(draw: ImageDraw.ImageDraw, lines: list[str], x: int, y: int, width: int | None, size: int = FONT_SIZE
           ) -> None:
    """Lines of text from (x, y) down, centred in ``width`` when given."""
    for k, line in enumerate(lines):
        offset = max(0, (width - font(size).getlength(line)) // 2) if width else 0
        draw.text((x + offset, y + k * (size + 4)), line, font=font(size), fill=INK)


def _title(title: str, width: int) -> tuple[list[str], int]:
    """The title's lines for a sheet at least ``width`` wide (it may widen the sheet up to ``MAX_TITLE``) and the
    sheet's width."""
    if not title:
        return [], width
    width = max(width, min(MAX_TITLE, int(font(FONT_SIZE + 2).getlength(plain(title))) + 1))
    return wrap(title, width, FONT_SIZE + 2), width


def upscaled(image: Image.Image, side: int) -> Image.Image:
    """``image`` enlarged (nearest neighbour, pixels stay crisp) so its longer side is at least ``side``."""
    factor = max(1, side // max(image.size))
    image = image.convert("RGB")
    return image.resize((image.width * factor, image.height * factor), Image.NEAREST) if factor > 1 else image


def labelled_row(cells: Sequence[tuple[Image.Image, str]], title: str = "", columns: int | None = None,
                 gap: int = 10) -> Image.Image:
    """Images in a grid of ``columns`` (default: one row), each with its label underneath, and a title on top."""
    columns = columns or len(cells)
    natural = max(int(font().getlength(plain(label))) + 1 for _, label in cells)
    width = max(max(image.width for image, _ in cells), min(natural, MAX_LABEL))
    labels = [wrap(label, width) for _, label in cells]
    label_height = max(len(lines) for lines in labels) * (FONT_SIZE + 4) + 2
    cell_height = max(image.height for image, _ in cells) + label_height
    rows = -(-len(cells) // columns)
    grid_width = columns * width + (columns - 1) * gap
    title_lines, inner = _title(title, grid_width)
    title_height = len(title_lines) * (FONT_SIZE + 6) + (PAD if title_lines else 0)
    size = (2 * PAD + inner, 2 * PAD + title_height + rows * cell_height + (rows - 1) * gap)
    sheet = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    _write(draw, title_lines, PAD, PAD, None, FONT_SIZE + 2)
    for index, ((image, _), lines) in enumerate(zip(cells, labels)):
        x = PAD + (index % columns) * (width + gap)
        y = PAD + title_height + (index // columns) * (cell_height + gap)
        sheet.paste(image.convert("RGB"), (x + (width - image.width) // 2, y))
        _write(draw, lines, x, y + image.height + 2, width)
    return sheet


def labelled_table(rows: Sequence[tuple[str, Sequence[Image.Image]]], header: Sequence[str] = (), title: str = "",
                   gap: int = 10) -> Image.Image:
    """A table: each row's label on the left, then its images; an optional header line of column names."""
    label_width = max(_text_size(label)[0] for label, _ in rows) + PAD
    columns = max(len(images) for _, images in rows)
    width = max(image.width for _, images in rows for image in images)
    height = max(image.height for _, images in rows for image in images)
    names = [wrap(name, width) for name in header]
    header_height = max((len(lines) for lines in names), default=0) * (FONT_SIZE + 4) + (4 if header else 0)
    title_lines, inner = _title(title, label_width + columns * (width + gap))
    title_height = len(title_lines) * (FONT_SIZE + 6) + (PAD if title_lines else 0)
    size = (2 * PAD + inner, 2 * PAD + title_height + header_height + len(rows) * (height + gap))
    sheet = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    _write(draw, title_lines, PAD, PAD, None, FONT_SIZE + 2)
    top = PAD + title_height
    for column, lines in enumerate(names):
        _write(draw, lines, PAD + label_width + column * (width + gap), top, width)
    for row, (label, images) in enumerate(rows):
        y = top + header_height + row * (height + gap)
        draw.text((PAD, y + height // 2 - FONT_SIZE // 2), plain(label), font=font(), fill=INK)
        for column, image in enumerate(images):
            sheet.paste(image.convert("RGB"), (PAD + label_width + column * (width + gap), y))
    return sheet


def side_by_side(frames: Sequence[Sequence[Image.Image]], gap: int = 4) -> list[Image.Image]:
    """Frame k of every strip next to each other (strips of unequal length hold their last frame)."""
    count = max(len(strip) for strip in frames)
    widths, height = [strip[0].width for strip in frames], max(strip[0].height for strip in frames)
    combined = []
    for k in range(count):
        canvas = Image.new("RGB", (sum(widths) + gap * (len(frames) - 1), height), BACKGROUND)
        x = 0
        for strip, width in zip(frames, widths):
            canvas.paste(strip[min(k, len(strip) - 1)].convert("RGB"), (x, 0))
            x += width + gap
        combined.append(canvas)
    return combined


def download(store: AssetStore, name: str, caption: str, png: Image.Image | None = None,
             frames: Sequence[Image.Image] | None = None, frame_ms: int = 120) -> dict:
    """Store a figure's slide files; the manifest's ``downloads`` entry (``name`` is the files' download name)."""
    entry: dict = {"name": name, "caption": {"src": store.put((caption.strip() + "\n").encode("utf-8"), "txt")}}
    if png is not None:
        entry["png"] = image_entry(store, png)
    if frames:
        first = frames[0]
        size = preview_size(first.width, first.height, max(ANIMATION_SIDE, max(first.size)))
        if max(first.size) < ANIMATION_SIDE:  # small pixel-space frames: enlarge by a whole factor, crisp
            factor = max(1, ANIMATION_SIDE // max(first.size))
            size = (first.width * factor, first.height * factor)
        entry["gif"] = {"src": store.put(gif_bytes(frames, size, frame_ms=frame_ms), "gif")}
        entry["mp4"] = {"src": store.put(mp4_bytes(frames, size), "mp4")}
    return entry


def caption_text(title: str, lines: Sequence[str], source: str) -> str:
    """A caption file: the figure's title, what it shows (one paragraph per line) and where it comes from."""
    body = "\n\n".join(line.strip() for line in lines if line and line.strip())
    return f"{title.strip()}\n\n{body}\n\n{source.strip()}\n"
