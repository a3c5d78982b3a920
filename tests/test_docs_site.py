"""The documentation site, as a reader's browser gets it: built with warnings as errors,
served over HTTP by a real server process on 127.0.0.1, read in Debian's Chromium through
Playwright (``nox -s docs``).

The site is built afresh into ``docs/_build/html`` by ``sphinx-build -W -E`` (about a
minute), or taken as it is from ``XPNET_DOCS_HTML`` when that names a built site (as
``nox -s docs`` does, after its own build).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlsplit

import pytest
from serving import chromium

pytestmark = pytest.mark.docs

ROOT = Path(__file__).resolve().parent.parent
#: Seconds the build may take (about a minute on 2 busy CPU cores from nothing).
BUILD_TIMEOUT = 600


@pytest.fixture(scope="module")
def html() -> Path:
    """The built site: XPNET_DOCS_HTML, else docs/ built now with warnings as errors."""
    given = os.environ.get("XPNET_DOCS_HTML")
    if given:
        return Path(given)
    pytest.importorskip("sphinx")
    out = ROOT / "docs" / "_build" / "html"
    # -E: every page read again (autodoc does not notice a changed docstring).
    build = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-E", "-b", "html", "-q"]
    done = subprocess.run(
        [*build, "docs", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, f"sphinx-build failed:\n{done.stdout}\n{done.stderr}"
    return out


@pytest.fixture(scope="module")
def site(html: Path) -> Iterator[str]:
    """The URL of the site, served by ``python -m http.server`` in its own process."""
    server = subprocess.Popen(
        [sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1"],
        cwd=html,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()  # "Serving HTTP on 127.0.0.1 port N (...) ..."
        port = re.search(r"port (\d+)", line)
        assert port, f"the server said {line!r}"
        yield f"http://127.0.0.1:{port.group(1)}/"
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as browser:
        yield browser


@pytest.fixture
def page(browser, site):
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


def test_the_api_page_of_twolayernet_shows_its_signature(page, site) -> None:
    page.goto(urljoin(site, "api/xpnet.html"))
    signature = page.locator('[id="xpnet.TwoLayerNet"]')
    signature.wait_for(state="visible")
    text = " ".join(signature.inner_text().split())
    assert text.startswith("class xpnet.TwoLayerNet("), text
    for parameter in ("input_size: int", "hidden_size: int", "output_size: int", "backend"):
        assert parameter in text, f"{parameter!r} is not in the signature shown: {text}"
    # Its methods are on the page too, each with its signature.
    train = " ".join(page.locator('[id="xpnet.TwoLayerNet.train"]').inner_text().split())
    assert train.startswith("train(X"), train


def test_search_finds_twolayerclassifier(page, site) -> None:
    page.goto(urljoin(site, "search.html"))
    box = page.locator(".bd-search-container input[type=search]")
    box.fill("TwoLayerClassifier")
    box.press("Enter")
    found = page.locator("#search-results a", has_text="TwoLayerClassifier").first
    found.wait_for(state="visible", timeout=30_000)
    links = page.locator("#search-results a").evaluate_all("els => els.map(e => e.href)")
    api = urljoin(site, "api/xpnet.sklearn.html#xpnet.sklearn.TwoLayerClassifier")
    assert api in links, f"no result leads to the class's API entry; results: {links}"


#: What a page loads or links to: (selector, attribute).
REFERENCES = [("a[href]", "href"), ("link[href]", "href"), ("script[src]", "src"),
              ("img[src]", "src")]  # fmt: skip


def test_no_broken_internal_link(page, site) -> None:
    """Every page reachable from the front page, every internal link and asset it names
    loads (200), and every #anchor it names exists on its page."""
    bad: list[str] = []
    # The site's own files only: MathJax, for the notebook's formulas, comes from its CDN.
    page.on(
        "response",
        lambda r: (
            bad.append(f"{r.status} {r.url}")
            if r.url.startswith(site) and r.status >= 400
            else None
        ),
    )
    page.on(
        "requestfailed", lambda r: bad.append(f"failed {r.url}") if r.url.startswith(site) else None
    )
    pages = [urljoin(site, "index.html")]
    seen, assets = set(pages), set()
    ids: dict[str, set[str]] = {}  # the ids on each page
    wanted: dict[tuple[str, str], tuple[str, str]] = {}  # (page, #id): (linked from, as)
    while pages:
        url = pages.pop()
        page.goto(url)
        ids[url] = set(page.evaluate("() => [...document.querySelectorAll('[id], a[name]')]"
                                     ".map(e => e.id || e.name)"))  # fmt: skip
        for selector, attribute in REFERENCES:
            for target in page.locator(selector).evaluate_all(
                f"els => els.map(e => [e.{attribute}, e.getAttribute('{attribute}')])"
            ):
                absolute, written = target
                if not absolute.startswith(site):
                    continue  # another site, or javascript:, mailto:
                where, fragment = urldefrag(absolute)
                if fragment:
                    wanted.setdefault((where, fragment), (url, written))
                if where.endswith(".html") and selector == "a[href]":
                    if where not in seen:
                        seen.add(where)
                        pages.append(where)
                elif where not in seen:
                    assets.add((where, url))
    for asset, linked_from in sorted(assets):
        status = _status(asset)
        if status != 200:
            bad.append(f"{status} {asset} (linked from {linked_from})")
    for (where, fragment), (linked_from, written) in sorted(wanted.items()):
        if fragment not in ids.get(where, set()):
            bad.append(f"no #{fragment} on {where} (linked from {linked_from} as {written!r})")
    assert len(seen) >= 30, f"only {len(seen)} pages reached from the front page"
    assert not bad, "\n".join(bad)


def _status(url: str) -> int:
    path = urlsplit(url).path
    if not path or path.endswith("/"):
        return 200  # a folder: http.server answers with a listing, not the site's
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as err:
        return err.code


def test_every_public_name_has_its_entry_in_the_api_reference(html: Path) -> None:
    """Each name of each public module's ``__all__`` is on the module's API page: its entry
    (``id``) there, or a link to its entry on the page of the module that documents it."""
    import importlib
    import pkgutil

    import xpnet

    names = ["xpnet"] + [
        info.name
        for info in pkgutil.walk_packages(xpnet.__path__, "xpnet.")
        if not any(part.startswith("_") for part in info.name.split("."))
    ]
    missing = []
    for name in names:
        module = importlib.import_module(name)
        page = html / "api" / f"{name}.html"
        if not page.exists():
            missing.append(f"{name}: no page {page.name}")
            continue
        text = page.read_text(encoding="utf-8")
        for public in module.__all__:
            entry = re.compile(rf'(id|href)="[^"]*[.#]{re.escape(public)}"')
            if not entry.search(text):
                missing.append(f"{name}.{public}")
    assert len(names) >= 20, names
    assert not missing, f"not in the API reference: {missing}"
