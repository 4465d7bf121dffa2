"""`recae serve --workers 2`: the journal carries appended interactions and reloads between workers; SIGHUP swaps them all."""

from __future__ import annotations

import signal
import time

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 'recae[serve]'")
httpx = pytest.importorskip("httpx", reason="httpx is not installed: pip install 'recae[test]'")

from test_serve_common import Server, admin, small_data  # noqa: E402

from recae.models import EASE  # noqa: E402


def test_workers_share_appended_history_and_reloads(tmp_path):
    data = small_data()
    first, second = EASE(l2=100.0, device="cpu").fit(data), EASE(l2=2000.0, device="cpu").fit(data)
    first.save(tmp_path / "m.recae")
    second.save(tmp_path / "second.recae")
    server = Server(tmp_path / "m.recae", "--workers", "2")
    try:
        user = 7_000_000
        items = [int(x) for x in first.item_ids_[[3, 8, 13]]]
        assert server.http.post("/interactions", json={"user": user, "items": items}).status_code == 200
        expected = first.recommend_new(items, n=5)[0].tolist()
        for _ in range(30):  # fresh connections land on either worker; each must know the user at once
            got = httpx.get(f"{server.url}/recommend", params={"user": user, "n": 5}, timeout=60)
            assert got.status_code == 200 and got.json()["items"] == expected, got.text
        r = server.http.post("/admin/reload", json={"path": str(tmp_path / "second.recae")}, headers=admin())
        assert r.status_code == 200
        deadline, seen = time.monotonic() + 60, []
        while time.monotonic() < deadline:  # the other worker follows the journal's generation
            seen = [httpx.get(f"{server.url}/model", timeout=60).json()["params"]["l2"] for _ in range(10)]
            if set(seen) == {2000.0}:
                break
            time.sleep(0.3)
        assert set(seen) == {2000.0}, seen
    finally:
        server.stop()


def test_sighup_swaps_every_worker_to_the_file_on_disk_with_no_failed_request(tmp_path):
    data = small_data()
    EASE(l2=100.0, device="cpu").fit(data).save(tmp_path / "m.recae")
    EASE(l2=2000.0, device="cpu").fit(data).save(tmp_path / "next.recae")
    server = Server(tmp_path / "m.recae", "--workers", "2")
    try:
        (tmp_path / "next.recae").replace(tmp_path / "m.recae")  # a deploy: the new file lands atomically
        server.signal(signal.SIGHUP)  # uvicorn's parent restarts the workers one at a time
        deadline, seen, failed = time.monotonic() + 180, [], []
        while time.monotonic() < deadline:
            seen = []
            for _ in range(10):
                r = httpx.get(f"{server.url}/model", timeout=60)
                if r.status_code != 200:
                    failed.append(r.status_code)
                else:
                    seen.append(r.json()["params"]["l2"])
            if set(seen) == {2000.0}:
                break
            time.sleep(0.2)
        assert set(seen) == {2000.0}, seen
        assert not failed, failed
        assert server.proc.poll() is None  # the server itself lives on
    finally:
        server.stop()
