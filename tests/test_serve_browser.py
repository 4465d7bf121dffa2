"""The explorer page in a real headless Chromium: the top-n list and the history must render."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 'recae[serve]'")
pytest.importorskip("httpx", reason="httpx is not installed: pip install 'recae[test]'")

from test_serve_common import Server, small_data  # noqa: E402

from recae.models import EASE  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed: run .ci/install_browser.sh "
                                                          "(apt-get install -y chromium chromium-driver)")


def rendered(url: str, profile) -> str:
    """The DOM after the page's scripts ran (virtual time waits for the page's fetches)."""
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", "--virtual-time-budget=30000", "--dump-dom", url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=240).stdout


def items_of(dom: str, cls: str) -> list[str]:
    return re.findall(rf'<li class="{cls}" data-item="([^"]*)"', dom)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser")
    model = EASE(l2=200.0, device="cpu").fit(small_data())
    model.save(folder / "m.recae")
    server = Server(folder / "m.recae", "--no-journal")
    yield model, server
    server.stop()


def test_explorer_renders_a_users_top_n_with_explanations_and_history(served, tmp_path):
    model, server = served
    user = int(model.user_ids_[4])
    expected = server.http.get("/recommend", params={"user": user, "n": 7}).json()["items"]
    history = server.http.get("/history", params={"user": user}).json()["items"]
    dom = rendered(f"{server.url}/?user={user}&n=7", tmp_path / "profile")
    assert items_of(dom, "rec") == [str(i) for i in expected], dom[-3000:]
    assert items_of(dom, "hist") == [str(i) for i in history]
    assert dom.count('<span class="why">because of ') == len(expected) and "[exact]</span>" in dom
    assert 'id="status" role="status"></div>' in dom  # no error shown


def test_explorer_renders_picked_items(served, tmp_path):
    model, server = served
    picked = [int(x) for x in model.item_ids_[[0, 5, 9]]]
    expected = model.recommend_new(picked, n=10)[0].tolist()
    dom = rendered(f"{server.url}/?items={','.join(map(str, picked))}", tmp_path / "profile")
    assert items_of(dom, "rec") == [str(i) for i in expected], dom[-3000:]
    assert items_of(dom, "hist") == [str(i) for i in picked]
    assert len(re.findall(r'<span class="pick">', dom)) == 30  # the popular items to pick from
