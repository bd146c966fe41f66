"""scripts/screenshots: the README's pictures are there, small, and what the script makes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image

from tests.support.scripts import load_script

ROOT = Path(__file__).resolve().parent.parent
# Small enough to keep the repository light; a screen of the UI as palette PNG is ~40 KiB.
MAX_BYTES = 150 * 1024


screenshots = load_script("screenshots", "screenshots_script")


def _embedded() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"!\[[^\]]*\]\((docs/images/[^)]+\.png)\)", readme)


def test_readme_embeds_the_four_pictures() -> None:
    expected = ["config-flow", "dashboard", "device", "panel"]
    assert sorted(Path(p).stem for p in _embedded()) == expected


@pytest.mark.parametrize("path", _embedded())
def test_every_picture_is_a_small_screenshot(path: str) -> None:
    image_path = ROOT / path
    assert image_path.stat().st_size <= MAX_BYTES
    with Image.open(image_path) as image:
        assert image.format == "PNG"
        assert image.width == screenshots.WIDTH
        assert image.mode == "P", "not optimised to a palette"


def test_optimise_makes_a_palette_png_that_looks_the_same(tmp_path: Path) -> None:
    path = tmp_path / "shot.png"
    original = Image.new("RGB", (200, 100), "white")
    for x in range(200):
        for y in range(0, 100, 2):
            original.putpixel((x, y), (x, 128, 255 - x))
    original.save(path)

    assert screenshots.optimise(path) == path.stat().st_size
    with Image.open(path) as image:
        assert image.mode == "P"
        assert image.size == (200, 100)
        red, green, blue = image.convert("RGB").getpixel((100, 0))
        assert abs(red - 100) <= 8
        assert abs(green - 128) <= 8
        assert abs(blue - 155) <= 8
