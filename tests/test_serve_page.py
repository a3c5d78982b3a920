"""``xpnet serve``'s page in Debian's Chromium driven by Playwright: digits drawn with the
mouse or a finger are read right, and a screenshot shows the drawing, its input and its
reading (``nox -s serve``)."""

from __future__ import annotations

import io
import itertools
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from serving import chromium, start, stop, train_model

pytestmark = [pytest.mark.serve, pytest.mark.mnist]


@pytest.fixture(scope="module")
def server(tmp_path_factory, mnist_dir):
    running = start(train_model(tmp_path_factory.mktemp("serve"), mnist_dir))
    yield running.url
    code, err = stop(running)
    assert err.strip().splitlines() == ["xpnet serve: stopped"]
    assert code == 130


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


#: Hand-drawn digits on the 280x280 pad: strokes of (x, y) points.
DIGITS = {
    "1": [[(145, 45), (135, 235)]],
    "0": [[(140 + 55 * np.sin(t), 140 - 85 * np.cos(t)) for t in np.linspace(0, 2 * np.pi, 40)]],
    "7": [[(75, 55), (205, 55), (120, 235)]],
}


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 760, "height": 520}, has_touch=True)
    page = context.new_page()
    seen, problems = [], []
    page.on("request", lambda r: seen.append(r.url))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(server)
    page.wait_for_selector("#bars .bar >> nth=9")
    yield page
    context.close()
    assert all(url.startswith(server) for url in seen), seen  # nothing from elsewhere
    assert not problems


def draw(page, strokes, touch=False):
    """Strokes drawn on the pad with the mouse (or a finger); waits for the reading."""
    box = page.locator("#pad").bounding_box()
    scale = box["width"] / 280
    if touch:
        cdp = page.context.new_cdp_session(page)
    for stroke in strokes:
        points = [(box["x"] + x * scale, box["y"] + y * scale) for x, y in stroke]
        if touch:
            kinds = ["touchStart"] + ["touchMove"] * (len(points) - 1)
            for kind, (x, y) in zip(kinds, points, strict=True):
                cdp.send("Input.dispatchTouchEvent",
                         {"type": kind, "touchPoints": [{"x": x, "y": y}]})  # fmt: skip
            cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
            continue
        page.mouse.move(*points[0])
        page.mouse.down()
        for x, y in points[1:]:
            page.mouse.move(x, y, steps=8)
        page.mouse.up()
    page.wait_for_selector('body[data-busy="0"]', state="attached")
    return page.locator("#prediction").inner_text()


def shown_input(page) -> np.ndarray:
    """The 28x28 input the page shows, read back from its canvas."""
    data = page.evaluate(
        "Array.from(document.getElementById('input').getContext('2d')"
        ".getImageData(0, 0, 28, 28).data)"
    )
    return np.array(data, dtype=np.uint8).reshape(28, 28, 4)[:, :, 0]


@pytest.mark.parametrize("digit", list(DIGITS))
def test_digits_drawn_with_the_mouse_are_read_right(page, digit):
    reading = draw(page, DIGITS[digit])
    assert reading[0] == digit, reading
    image = shown_input(page)
    rows, cols = np.nonzero(image.any(axis=1))[0], np.nonzero(image.any(axis=0))[0]
    assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 == 20  # scaled to fit 20x20
    ys, xs = np.mgrid[:28, :28]
    centre = (image * ys).sum() / image.sum(), (image * xs).sum() / image.sum()
    assert np.allclose(centre, 14, atol=0.6)  # centred by its centre of mass
    bars = page.locator("#bars .fill").evaluate_all("rows => rows.map(r => r.style.width)")
    widths = [float(w.rstrip("%")) for w in bars]
    assert int(np.argmax(widths)) == int(digit)
    assert sum(widths) == pytest.approx(100, abs=1)


def test_clear_empties_the_pad_and_the_reading_and_a_finger_draws_too(page):
    assert draw(page, DIGITS["7"])[0] == "7"
    page.click("#clear")
    assert page.locator("#prediction").inner_text() == "\u2013"
    assert not shown_input(page).any()
    assert draw(page, DIGITS["1"], touch=True)[0] == "1"


def screenshot(page, path: Path | None = None) -> np.ndarray:
    """What the page shows in its viewport, (H, W, 3) uint8 RGB; written to ``path`` too."""
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(page.screenshot(path=path))).convert("RGB"))


def region(shot: np.ndarray, page, selector: str, inset: int = 0) -> np.ndarray:
    """The part of a screenshot an element covers (its border box), ``inset`` pixels in."""
    box = page.locator(selector).bounding_box()
    top, left = round(box["y"]) + inset, round(box["x"]) + inset
    bottom, right = round(box["y"] + box["height"]) - inset, round(box["x"] + box["width"]) - inset
    return shot[top:bottom, left:right]


def distance_to(strokes, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Each (row, col) pixel centre's distance to the nearest segment of the strokes."""
    centres = np.stack([cols + 0.5, rows + 0.5], axis=-1)
    nearest = np.full(rows.shape, np.inf)
    for stroke in strokes:
        points = np.asarray(stroke, dtype=np.float64)
        for a, b in itertools.pairwise(points):
            t = np.clip(((centres - a) @ (b - a)) / ((b - a) @ (b - a)), 0, 1)
            gap = np.linalg.norm(centres - (a + t[..., None] * (b - a)), axis=-1)
            nearest = np.minimum(nearest, gap)
    return nearest


#: The top bar's colour (style.css's ``.bar.top .fill``).
TOP_BAR = np.array([0xD2, 0x69, 0x1E])


def test_a_screenshot_shows_the_drawing_its_input_and_its_reading(page, tmp_path):
    """The page's picture before a digit is drawn, after, and after Clear: the ink where the
    pen went, the network's input as the server prepared it, the reading's bar as wide as
    its probability. Writes the drawn picture; ``XPNET_SERVE_SCREENSHOT=docs/serve.png``
    keeps it."""
    viewport = page.viewport_size
    for selector in ("h1", "#pad", "#clear", "#prediction", "#input", "#bars"):
        element = page.locator(selector)
        assert element.is_visible(), selector
        box = element.bounding_box()
        assert 0 <= box["x"] <= viewport["width"] - box["width"], selector
        assert 0 <= box["y"] <= viewport["height"] - box["height"], selector
    pen = page.evaluate("document.getElementById('pad').getContext('2d').lineWidth")
    inset = 4  # past the pad's 1-pixel border and its rounded corners

    blank = screenshot(page)
    assert blank.shape == (viewport["height"], viewport["width"], 3)
    assert (region(blank, page, "#pad", inset) == 255).all()  # a white pad
    assert (region(blank, page, "#input") == 0).all()  # an empty (black) input
    assert not (np.abs(region(blank, page, "#bars") - TOP_BAR).max(axis=-1) <= 3).any()

    strokes = DIGITS["7"]
    assert draw(page, strokes)[0] == "7"
    path = tmp_path / "serve.png"
    drawn = screenshot(page, path)
    # Ink where the pen went, and nowhere else.
    pad = region(drawn, page, "#pad", inset).max(axis=-1)
    rows, cols = np.mgrid[: pad.shape[0], : pad.shape[1]]
    distance = distance_to(strokes, rows + inset - 1, cols + inset - 1)  # canvas pixels
    assert (pad[distance < pen / 2 - 1.5] < 64).all()
    assert (pad[distance > pen / 2 + 1.5] == 255).all()
    # The input canvas shows the server's 28x28 input, four screen pixels a pixel.
    shown = region(drawn, page, "#input")[2::4, 2::4]
    expected = shown_input(page)
    assert expected.max() == 255
    np.testing.assert_allclose(shown, np.repeat(expected[..., None], 3, axis=-1), atol=1)
    # The reading's bar (7) is the only top one, its fill as wide as its probability.
    assert page.locator("#bars .bar.top").count() == 1
    top = np.abs(region(drawn, page, "#bars") - TOP_BAR).max(axis=-1) <= 3
    track = region(drawn, page, "#bars .bar.top .track")
    filled = np.abs(track - TOP_BAR).max(axis=-1) <= 3
    assert top.sum() == filled.sum() > 0
    assert page.locator("#bars .bar").nth(7).get_attribute("class") == "bar top"
    probability = float(page.locator("#bars .bar.top .value").inner_text().rstrip("%")) / 100
    assert filled[filled.shape[0] // 2].sum() == pytest.approx(probability * track.shape[1], abs=2)

    page.click("#clear")
    cleared = screenshot(page)
    for selector, inset_by in (("#pad", inset), ("#input", 0), ("#bars", 0)):
        np.testing.assert_array_equal(
            region(cleared, page, selector, inset_by), region(blank, page, selector, inset_by)
        )
    if os.environ.get("XPNET_SERVE_SCREENSHOT"):
        shutil.copy(path, os.environ["XPNET_SERVE_SCREENSHOT"])
