"""The web app in a real headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path
from urllib.parse import urlparse

import pytest
from browsing import CHROMIUM, FLAGS

pytestmark = pytest.mark.browser

ARTIFACTS = Path(
    os.environ.get("ATELIER_TEST_OUTPUT", Path(__file__).resolve().parents[2] / "test-output")
)


@pytest.fixture(scope="module")
def page():
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        outside: list[str] = []

        def guard(route):
            host = urlparse(route.request.url).hostname or ""
            if route.request.url.startswith(("data:", "blob:")) or host in {
                "127.0.0.1",
                "localhost",
            }:
                return route.continue_()
            outside.append(route.request.url)
            return route.abort()

        context.route("**/*", guard)
        pg = context.new_page()
        yield pg, outside
        browser.close()


def _wait_images(pg, count: int) -> None:
    pg.wait_for_function(
        f"document.querySelectorAll('[data-testid=\"stImage\"] img').length >= {count}",
        timeout=180_000,
    )
    pg.wait_for_function(
        "[...document.querySelectorAll('[data-testid=\"stImage\"] img')]"
        ".every(i => i.complete && i.naturalWidth > 0)",
        timeout=60_000,
    )


def _samples_analysed(pg, url: str) -> None:
    """Open the app, load the 45 samples and run the default analysis."""
    pg.goto(url, wait_until="domcontentloaded")
    pg.get_by_role("button", name="Load sample artworks").click()
    _wait_images(pg, 45)
    pg.get_by_role("button", name="Run analysis").click()
    pg.locator('[data-testid="stSidebar"]').get_by_text("45 images,", exact=False).wait_for(
        timeout=180_000
    )


def test_load_samples_run_and_see_every_image(server, page, samples_dir, tmp_path):
    url, _, _ = server
    pg, outside = page
    pg.goto(url, wait_until="domcontentloaded")
    pg.get_by_role("button", name="Load sample artworks").click()
    _wait_images(pg, 45)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / "web_images.png"))
    pg.get_by_role("button", name="Run analysis").click()
    pg.get_by_text("clusters", exact=False).first.wait_for(timeout=180_000)
    pg.locator('[data-testid="stSidebar"]').get_by_text("images,", exact=False).wait_for(
        timeout=180_000
    )
    pg.get_by_role("link", name="5. Clusters").click()
    pg.locator("h3", has_text="clusters").wait_for(timeout=120_000)
    _wait_images(pg, 45)
    captions = pg.locator('[data-testid="stImageCaption"]').all_inner_texts()
    with open(samples_dir / "families.csv", newline="", encoding="utf-8") as fh:
        expected = sorted(r["image"] for r in csv.DictReader(fh))
    names = [c.strip().removeprefix("exemplar: ") for c in captions]
    assert sorted(names) == expected
    # each cluster's exemplar is marked (first in its cluster, captioned)
    marked = [c for c in captions if c.startswith("exemplar: ")]
    shown = pg.locator("h3", has_text="clusters").first.inner_text()
    assert len(marked) == int(shown.split()[0]), marked
    from app.cli import main

    assert main(["analyze", str(samples_dir), "--out", str(tmp_path / "cli"), "--no-progress"]) == 0
    with open(tmp_path / "cli" / "clusters.csv", newline="", encoding="utf-8") as fh:
        k_cli = len({r["cluster"] for r in csv.DictReader(fh)} - {"-1"})
    assert shown.strip() == f"{k_cli} clusters"
    pg.screenshot(path=str(ARTIFACTS / "web_clusters.png"))
    pg.get_by_role("tab", name="Dendrogram").click()
    pg.wait_for_timeout(1500)
    pg.screenshot(path=str(ARTIFACTS / "web_dendrogram.png"))
    assert pg.get_by_text("Deploy", exact=True).count() == 0  # viewer toolbar, no deploy link
    assert outside == [], f"requests to other hosts: {outside}"


def test_upload_three_files(server, page, samples_dir):
    url, _, _ = server
    pg, outside = page
    pg.goto(url, wait_until="domcontentloaded")
    # the uploader states the app's own limit (not Streamlit's 200 MB default)
    pg.get_by_text("50MB per file", exact=False).first.wait_for(timeout=60_000)
    assert pg.get_by_text("200MB per file", exact=False).count() == 0
    files = sorted((samples_dir / "images").glob("print_cat_*"))[:3]
    pg.locator('[data-testid="stFileUploaderDropzoneInput"]').first.set_input_files(
        [str(f) for f in files]
    )
    pg.get_by_role("button", name="Use the uploaded files").click()
    pg.get_by_text("3 image(s) loaded, 0 skipped", exact=False).wait_for(timeout=60_000)
    _wait_images(pg, 3)
    captions = pg.locator('[data-testid="stImageCaption"]').all_inner_texts()
    assert sorted(c.split(" (")[0] for c in captions) == sorted(f.name for f in files)
    pg.screenshot(path=str(ARTIFACTS / "web_upload.png"))
    # the clusters ZIP of an upload holds every uploaded file, byte for byte
    pg.get_by_role("button", name="Run analysis").click()
    pg.locator('[data-testid="stSidebar"]').get_by_text("images,", exact=False).wait_for(
        timeout=180_000
    )
    pg.get_by_role("link", name="8. Export").click()
    pg.get_by_role("button", name="Prepare the downloads").click()
    link = pg.get_by_role("button", name="Download clusters.zip")
    link.wait_for(timeout=180_000)
    with pg.expect_download() as info:
        link.click()
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(Path(info.value.path()).read_bytes())) as zf:
        stored = {Path(n).name: zf.read(n) for n in zf.namelist()}
    assert stored == {f.name: f.read_bytes() for f in files}
    # a reload brings the uploads back (the server holds them under a token in the address)
    pg.wait_for_function("window.location.search.includes('uploads=')", timeout=30_000)
    assert "folder=" not in pg.url
    pg.reload(wait_until="domcontentloaded")
    sidebar = pg.locator('[data-testid="stSidebar"]')
    sidebar.get_by_text("the 3 uploaded images", exact=False).wait_for(timeout=60_000)
    sidebar.get_by_text("3 images,", exact=False).wait_for(timeout=180_000)
    # an address whose uploads the server no longer holds says so
    pg.goto(f"{url}/?uploads=0123abcd", wait_until="domcontentloaded")
    sidebar.get_by_text("upload them again", exact=False).wait_for(timeout=60_000)
    assert outside == [], f"requests to other hosts: {outside}"


def test_file_names_are_shown_as_written(server, page, samples_dir, tmp_path):
    """Names are data: Markdown and HTML characters in them are shown literally."""
    url, _, _ = server
    pg, outside = page
    names = ["_x_.jpg", "*b*.jpg", "[c](d).jpg", "e<f>.jpg", "g__h__.jpg"]
    folder = tmp_path / "odd names"
    folder.mkdir()
    sources = sorted((samples_dir / "images").glob("print_cat_*"))
    for name, src in zip(names, sources * 2, strict=False):
        shutil.copy(src, folder / name)
    pg.goto(url, wait_until="domcontentloaded")
    box = pg.get_by_role("textbox", name="Or a folder on this machine")
    box.fill(str(folder))
    box.press("Enter")
    pg.get_by_role("button", name="Load folder").click()
    pg.get_by_text(f"{len(names)} image(s) loaded", exact=False).wait_for(timeout=60_000)
    _wait_images(pg, len(names))
    captions = pg.locator('[data-testid="stImageCaption"]').all_inner_texts()
    assert sorted(c.rsplit(" (", 1)[0].strip() for c in captions) == sorted(names)
    assert outside == [], f"requests to other hosts: {outside}"


def test_query_page_ranks_the_family_first(server, page, samples_dir):
    url, _, _ = server
    pg, outside = page
    _samples_analysed(pg, url)
    pg.get_by_role("link", name="7. Query").click()
    pg.get_by_text("7. Query a questioned image").wait_for(timeout=60_000)
    questioned = samples_dir / "images" / "photo_rocket_2.jpg"
    pg.locator('[data-testid="stFileUploaderDropzoneInput"]').first.set_input_files(str(questioned))
    pg.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=180_000)
    pg.wait_for_timeout(1000)
    pg.screenshot(path=str(ARTIFACTS / "web_query.png"), full_page=True)
    captions = pg.locator('[data-testid="stImageCaption"]').all_inner_texts()
    # the questioned image, then the five best references: "rank 1: images/... (1.000)"
    assert captions[0] == "questioned: photo_rocket_2.jpg", captions
    ranked = [c.split(": ", 1)[1].rsplit(" (", 1)[0] for c in captions[1:6]]
    # the questioned file is itself among the references (probability 1), then its family
    assert sorted(ranked[:4]) == [f"images/photo_rocket_{i}.jpg" for i in (1, 2, 3, 4)], ranked
    assert ranked[0] == "images/photo_rocket_2.jpg", ranked
    assert "photo_rocket" not in ranked[4], ranked
    assert outside == [], f"requests to other hosts: {outside}"


def test_upload_the_bad_corpus(server, page, tmp_path):
    """The mixed corpus of test_corpus.py, uploaded: good files shown, bad ones with reasons."""
    import re

    from tests.app.test_corpus import awkward_but_good, bad_ones

    url, _, _ = server
    pg, outside = page
    dialogs: list[str] = []
    pg.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    good, bad = awkward_but_good(), bad_ones()
    paths = []
    for i, (name, data) in enumerate({**good, **{k: v for k, (v, _) in bad.items()}}.items()):
        path = tmp_path / str(i) / Path(name).name  # one folder each: two files share a name
        path.parent.mkdir()
        path.write_bytes(data)
        paths.append(str(path))
    pg.goto(url, wait_until="domcontentloaded")
    pg.locator('[data-testid="stFileUploaderDropzoneInput"]').first.set_input_files(paths)
    pg.get_by_role("button", name="Use the uploaded files").click()
    pg.get_by_text(f"{len(good)} image(s) loaded, {len(bad)} skipped", exact=False).wait_for(
        timeout=120_000
    )
    _wait_images(pg, len(good))
    warnings = " ".join(pg.locator('[data-testid="stAlert"]').all_inner_texts())
    for name, (_, reason) in bad.items():
        match = re.search(rf"Skipped {re.escape(name)}: ([^\n]*)", warnings)
        assert match and re.search(reason, match.group(1)), (name, warnings[:2000])
    captions = pg.locator('[data-testid="stImageCaption"]').all_inner_texts()
    # the upload name is sanitised (no angle brackets reach the page), and nothing ran
    assert any("script_alert(1)" in c for c in captions), " | ".join(captions)
    assert not any("<" in c for c in captions)
    assert dialogs == []
    pg.screenshot(path=str(ARTIFACTS / "web_upload_corpus.png"), full_page=True)
    assert outside == [], f"requests to other hosts: {outside}"


def test_a_reload_keeps_images_settings_and_result(server, page, samples_dir):
    """The address holds the settings, the folder and whether a result was shown; a reload
    (or the address opened again) brings them back."""
    import json
    from urllib.parse import parse_qs, quote

    url, _, _ = server
    pg, outside = page
    sidebar = pg.locator('[data-testid="stSidebar"]')
    pg.goto(url, wait_until="domcontentloaded")
    pg.get_by_role("button", name="Load sample artworks").click()
    _wait_images(pg, 45)
    pg.get_by_role("button", name="Run analysis").click()
    sidebar.get_by_text("45 images,", exact=False).wait_for(timeout=180_000)
    pg.wait_for_function("window.location.search.includes('run=1')", timeout=30_000)
    query = parse_qs(urlparse(pg.url).query)
    assert Path(query["folder"][0]) == samples_dir
    pg.reload(wait_until="domcontentloaded")
    sidebar.get_by_text("Restored after the reload", exact=False).wait_for(timeout=60_000)
    sidebar.get_by_text("45 images,", exact=False).wait_for(timeout=180_000)
    _wait_images(pg, 45)
    # settings from the address: another clustering method, shown on its page and used
    wanted = json.dumps({"clustering": {"method": "agglomerative"}})
    pg.goto(
        f"{url}/clusters?settings={quote(wanted)}&folder={quote(str(samples_dir))}&run=1",
        wait_until="domcontentloaded",
    )
    sidebar.get_by_text("45 images,", exact=False).wait_for(timeout=180_000)
    pg.get_by_text("5. Clusters").first.wait_for(timeout=60_000)
    pg.wait_for_timeout(1000)
    pg.screenshot(path=str(ARTIFACTS / "web_restored.png"))
    box = pg.locator('[data-testid="stSelectbox"]').first
    method = box.locator("input").first  # a combobox: the value is the input's
    pg.wait_for_function(
        "e => e.value === 'agglomerative'", arg=method.element_handle(), timeout=60_000
    )
    assert sidebar.get_by_text("Out of date", exact=False).count() == 0
    assert outside == [], f"requests to other hosts: {outside}"


def test_compare_shows_the_originals_registered_with_zoom_and_wipe(server, page, samples_dir):
    """Compare: the full-resolution viewer holds A and B registered at the originals' size;
    zooming one pane zooms both, and the wipe moves the boundary between A and B."""
    url, _, _ = server
    pg, outside = page
    _samples_analysed(pg, url)
    pg.get_by_role("link", name="6. Compare").click()
    pg.get_by_text("At the originals' resolution", exact=False).wait_for(timeout=120_000)
    frame = pg.frame_locator("iframe").first
    frame.get_by_role("button", name="Wipe").wait_for(timeout=60_000)
    imgs = frame.locator(".pane img")
    widths = [imgs.nth(k).evaluate("i => i.naturalWidth") for k in range(imgs.count())]
    assert len(widths) == 2 and min(widths) >= 400, widths  # the originals, not 256 px
    before = imgs.nth(0).evaluate("i => i.style.transform")
    frame.locator(".pane").first.hover()
    pg.mouse.wheel(0, -600)
    pg.wait_for_timeout(300)
    after = [imgs.nth(k).evaluate("i => i.style.transform") for k in range(2)]
    assert after[0] != before and after[0] == after[1], (before, after)  # synchronized
    frame.get_by_role("button", name="Wipe").click()
    wiped = frame.locator(".pane img").nth(1)
    first = wiped.evaluate("i => i.style.clipPath")
    frame.locator("#wipe").fill("20")
    assert wiped.evaluate("i => i.style.clipPath") != first
    pg.screenshot(path=str(ARTIFACTS / "web_compare_viewer.png"), full_page=True)
    # the contour test and SIFT at the same resolution, with their figures in words
    frame.get_by_role("button", name="Outlines").click()
    label = frame.locator(".label").first.inner_text()
    assert "A magenta, B green" in label and "blur" in label, label
    frame.get_by_role("button", name="Deviation").click()
    label = frame.locator(".label").first.inner_text()
    assert "median" in label and "pixels of A's original" in label, label
    pg.screenshot(path=str(ARTIFACTS / "web_compare_deviation.png"), full_page=True)
    frame.get_by_role("button", name="Matches").click()
    assert frame.locator(".pane").count() == 2
    assert " matches found again within " in frame.locator(".label").first.inner_text()
    shown = frame.locator(".pane img").nth(0).evaluate("i => i.naturalWidth")
    assert shown == widths[0]  # the same frame as A
    assert outside == [], f"requests to other hosts: {outside}"


def test_compare_at_1024_px_or_more_and_the_wipe_changes_the_picture(
    server, page, samples_dir, tmp_path
):
    """Originals larger than the samples (a stand-in for museum photographs, opened by
    address): the viewer shows the registered pair at >= 1024 px, and moving the wipe
    slider changes the pixels on screen."""
    from urllib.parse import quote

    from PIL import Image

    folder = tmp_path / "large"
    folder.mkdir()
    for name in ("cartoon_b_1.jpg", "cartoon_b_2.jpg", "photo_cat_1.jpg", "photo_cat_2.jpg"):
        with Image.open(samples_dir / "images" / name) as im:
            im.convert("RGB").resize((1600, 1200), Image.LANCZOS).save(folder / name, quality=92)
    url, _, _ = server
    pg, outside = page
    pg.goto(f"{url}/compare?folder={quote(str(folder))}&run=1", wait_until="domcontentloaded")
    pg.get_by_text("At the originals' resolution", exact=False).wait_for(timeout=180_000)
    frame = pg.frame_locator("iframe").first
    frame.get_by_role("button", name="Wipe").wait_for(timeout=60_000)
    imgs = frame.locator(".pane img")
    assert min(imgs.nth(k).evaluate("i => i.naturalWidth") for k in range(2)) >= 1024
    frame.get_by_role("button", name="Wipe").click()
    pane = frame.locator(".pane").first
    frame.locator("#wipe").fill("10")
    pg.wait_for_timeout(300)
    left = pane.screenshot()
    frame.locator("#wipe").fill("90")
    pg.wait_for_timeout(300)
    right = pane.screenshot()
    import io

    import numpy as np

    a = np.asarray(Image.open(io.BytesIO(left)).convert("L"), float)
    b = np.asarray(Image.open(io.BytesIO(right)).convert("L"), float)
    assert a.shape == b.shape and (np.abs(a - b) > 30).mean() > 0.05
    assert outside == [], f"requests to other hosts: {outside}"
