"""Live state of `recae serve`: journal replay after SIGKILL, reloads under traffic, refused model files."""

from __future__ import annotations

import os
import pickle
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 'recae[serve]'")
pytest.importorskip("httpx", reason="httpx is not installed: pip install 'recae[test]'")

from test_serve_common import REPO, Server, admin, small_data  # noqa: E402

from recae.models import EASE  # noqa: E402


@pytest.fixture(scope="module")
def data():
    return small_data()


@pytest.fixture(scope="module")
def models(data):
    return EASE(l2=100.0, device="cpu").fit(data), EASE(l2=2000.0, device="cpu").fit(data)


def test_journal_replay_after_sigkill_loses_no_acknowledged_interaction(tmp_path, models):
    model, _ = models
    model.save(tmp_path / "m.recae")
    server = Server(tmp_path / "m.recae")
    acked = {}
    try:
        items = [int(x) for x in model.item_ids_[:60]]
        for k in range(40):  # new users and known ones, acknowledged one by one
            user = 5_000_000 + k % 7 if k % 2 else int(model.user_ids_[k % 5])
            chunk = items[k % 50: k % 50 + 3]
            r = server.http.post("/interactions", json={"user": user, "items": chunk})
            assert r.status_code == 200, r.text
            acked.setdefault(user, set()).update(chunk)
        server.kill()  # SIGKILL right after the last acknowledgement: no shutdown code runs
        assert server.proc.returncode == -signal.SIGKILL
    finally:
        server.stop()
    assert (tmp_path / "m.recae.journal").exists()  # the default journal sits next to the model file
    again = Server(tmp_path / "m.recae", token=None)  # no admin token: admin endpoints are off
    try:
        off = again.http.post("/admin/reload", headers=admin())
        assert off.status_code == 403 and "admin endpoints are off" in off.json()["error"]
        for user, chunk in acked.items():
            hist = again.http.get("/history", params={"user": user}).json()
            assert chunk <= set(hist["items"]), (user, chunk, hist)
        new_user = 5_000_001
        expected = model.recommend_new(sorted(acked[new_user]), n=5)[0].tolist()
        assert again.http.get("/recommend", params={"user": new_user, "n": 5}).json()["items"] == expected
        live = again.http.get("/model").json()["live"]
        assert live["journal_records"] == 40 and live["replayed"] == 120
    finally:
        again.stop()


def _traffic(server, model, stop, results):
    import httpx

    users = [int(u) for u in model.user_ids_[:20]]
    hist = [int(x) for x in model.item_ids_[:5]]
    with httpx.Client(base_url=server.url, timeout=60.0) as http:
        k = 0
        while not stop.is_set():
            k += 1
            try:
                if k % 3:
                    r = http.get("/recommend", params={"user": users[k % len(users)], "n": 10})
                else:
                    r = http.post("/recommend_new", json={"history": hist, "n": 10})
                results.append(r.status_code if r.status_code != 200 or r.json()["items"] else "empty")
            except httpx.HTTPError as exc:
                results.append(repr(exc))


def test_reload_under_traffic_fails_no_request(tmp_path, models):
    first, second = models
    first.save(tmp_path / "m.recae")
    second.save(tmp_path / "second.recae")
    server = Server(tmp_path / "m.recae")
    stop, results = threading.Event(), []
    threads = [threading.Thread(target=_traffic, args=(server, first, stop, results)) for _ in range(4)]
    try:
        for t in threads:
            t.start()
        time.sleep(1.0)
        generations = []
        for k in range(4):  # alternate: a path given in the body, then the same file re-read
            body = {"path": str(tmp_path / ("second.recae" if k % 2 == 0 else "m.recae"))}
            r = server.http.post("/admin/reload", json=body, headers=admin())
            assert r.status_code == 200, r.text
            generations.append(r.json()["generation"])
            time.sleep(0.5)
        shutil.copy(tmp_path / "second.recae", tmp_path / "m.recae.tmp")
        os.replace(tmp_path / "m.recae.tmp", tmp_path / "m.recae")  # a new file in place, then SIGHUP
        server.signal(signal.SIGHUP)
        deadline = time.monotonic() + 60
        while server.http.get("/model").json()["generation"] != 5 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    try:
        assert generations == [1, 2, 3, 4]
        info = server.http.get("/model").json()
        assert info["generation"] == 5 and info["params"]["l2"] == 2000.0  # SIGHUP re-read the new file
        user = int(first.user_ids_[3])
        assert server.http.get("/recommend", params={"user": user, "n": 10}).json()["items"] == \
            second.recommend(user, n=10)[0].tolist()
        bad = [r for r in results if r != 200]
        assert len(results) > 20 and not bad, f"{len(bad)} failed of {len(results)}: {bad[:5]}"
    finally:
        server.stop()


class Boom:  # unpickling this would create the marker file: a loader that unpickles would be caught
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_refuses_a_pickle_or_corrupt_file_and_keeps_serving(tmp_path, models):
    model, _ = models
    model.save(tmp_path / "m.recae")
    marker = tmp_path / "UNPICKLED"
    (tmp_path / "evil.recae").write_bytes(pickle.dumps({"class": "EASE", "state": Boom(str(marker))}))
    raw = bytearray((tmp_path / "m.recae").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (tmp_path / "corrupt.recae").write_bytes(bytes(raw))
    server = Server(tmp_path / "m.recae")
    user = int(model.user_ids_[1])
    expected = model.recommend(user, n=5)[0].tolist()
    try:
        for name, why in (("evil.recae", "not a recae model file"), ("corrupt.recae", "checksum"),
                          ("missing.recae", "no model file")):
            r = server.http.post("/admin/reload", json={"path": str(tmp_path / name)}, headers=admin())
            assert r.status_code == 422 and why in r.json()["error"], r.text
            assert "keeps serving" in r.json()["error"]
        os.replace(tmp_path / "evil.recae", tmp_path / "m.recae")  # the served path itself, then SIGHUP
        server.signal(signal.SIGHUP)
        time.sleep(3.0)
        assert server.proc.poll() is None
        assert server.http.get("/recommend", params={"user": user, "n": 5}).json()["items"] == expected
        assert server.http.get("/model").json()["generation"] == 0
        assert "recae_reloads_refused_total 4" in server.http.get("/metrics").text
        assert not marker.exists()
    finally:
        server.stop()
    # the command line refuses it too, with one clear line and no traceback
    run = subprocess.run([sys.executable, "-m", "recae.cli", "serve", str(tmp_path / "m.recae"), "--port", "0"],
                         capture_output=True, text=True, cwd=REPO, timeout=300)
    assert run.returncode == 2 and "is not a recae model file" in run.stderr and "Traceback" not in run.stderr
    assert not marker.exists()


def test_a_damaged_journal_is_salvaged_on_request_and_served(tmp_path, models):
    import sqlite3

    from recae.serve import Journal

    model, _ = models
    model.save(tmp_path / "m.recae")
    items = [int(x) for x in model.item_ids_[:3]]
    j = Journal(tmp_path / "j")
    for item in items:
        j.append({"user": 10**7, "items": [item], "ratings": None})
    j.close()
    with sqlite3.connect(tmp_path / "j") as db:
        db.execute("UPDATE events SET crc = crc + 1 WHERE seq = 2")
    server = Server(tmp_path / "m.recae", "--journal", str(tmp_path / "j"), "--salvage-journal")
    try:
        history = server.http.get("/history", params={"user": 10**7}).json()
        assert history["items"] == sorted([items[0], items[2]])  # the two records that pass their checks
        assert "journal salvaged: 2 record(s) kept; damaged: [2]" in server.output()
    finally:
        server.stop()
