"""Shared helpers of the serving tests (a real `recae serve` process on a free port), and unit tests
of the pieces below HTTP: id coercion, the journal, the session."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from recae.datasets.synthetic import synthetic
from recae.exceptions import DataError, ModelFileError, UnknownIdError
from recae.models import EASE

REPO = Path(__file__).resolve().parents[1]
TOKEN = "test-token-123"


def small_data():
    """ML-100K positives when present (RECAE_DATA_DIR), else the built-in synthetic log: seconds to fit."""
    from conftest import real_data_dir

    if (real_data_dir() / "ml-100k" / "u.data").exists():
        from recae.datasets import load_movielens

        return load_movielens("100k", data_dir=real_data_dir(), download=False).binarize(3.5).filter(min_user=5)
    return synthetic(n_users=600, n_items=300, random_state=0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`recae serve MODEL_FILE` in a subprocess on a free localhost port."""

    def __init__(self, model_file, *args, token: str | None = TOKEN, env=None):
        import httpx

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        full_env.pop("RECAE_ADMIN_TOKEN", None)
        if token is not None:
            full_env["RECAE_ADMIN_TOKEN"] = token
        self.log = open(Path(model_file).parent / f"server-{self.port}.log", "w+")
        self.proc = subprocess.Popen([sys.executable, "-m", "recae.cli", "serve", str(model_file), "--port",
                                      str(self.port), *args], stdout=self.log, stderr=subprocess.STDOUT, env=full_env,
                                     cwd=REPO)
        self.http = httpx.Client(base_url=self.url, timeout=60.0)
        self.wait_ready()

    def wait_ready(self, timeout: float = 180.0) -> None:
        import httpx

        deadline = time.monotonic() + timeout  # generous: the test machine may be busy
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if self.http.get("/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"server not ready after {timeout} s:\n{self.output()}")

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def signal(self, sig) -> None:
        self.proc.send_signal(sig)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
        self.http.close()
        self.log.close()


def admin(token: str = TOKEN) -> dict:
    return {"Authorization": f"Bearer {token}"}


# ---------------------------------------------------------------- unit tests below HTTP
@pytest.fixture(scope="module")
def model():
    return EASE(l2=50.0, device="cpu").fit(synthetic(n_users=200, n_items=80, random_state=0))


def test_public_id_lookups_name_the_unknown_or_give_minus_one(model):
    users, items = model.user_ids_, model.item_ids_
    np.testing.assert_array_equal(model.user_rows([users[4], users[0]]), [4, 0])
    np.testing.assert_array_equal(model.item_columns([items[7]]), [7])
    np.testing.assert_array_equal(model.user_rows([users[2], 10**9], unknown="ignore"), [2, -1])
    np.testing.assert_array_equal(model.item_columns([10**9, items[1]], unknown="ignore"), [-1, 1])
    with pytest.raises(UnknownIdError, match=str(10**9)):
        model.user_rows([10**9])
    with pytest.raises(UnknownIdError, match=str(10**9)):
        model.item_columns([items[0], 10**9])


def test_coerce_id_follows_the_model_id_type(model):
    from recae.serve.state import coerce_id

    ints = model.user_ids_
    assert coerce_id("42", ints, "user id") == 42 and coerce_id(7, ints, "user id") == 7
    for bad in ("abc", 1.5, True, None, "4 2"):
        with pytest.raises(DataError, match="user id must be an integer"):
            coerce_id(bad, ints, "user id")
    strs = np.array(["a", "b"], dtype=object)
    assert coerce_id("a", strs, "item id") == "a" and coerce_id(3, strs, "item id") == "3"
    with pytest.raises(DataError, match="must be a string"):
        coerce_id(1.5, strs, "item id")


def test_quality_measured_at_fit_travels_in_the_file_to_get_model(tmp_path):
    from recae import MultDAE, load, strong_generalization_split
    from recae.serve.state import ModelState, load_model

    split = strong_generalization_split(synthetic(n_users=300, n_items=80, random_state=1), random_state=0)
    model = MultDAE(epochs=3, random_state=0, device="cpu").fit(split.train, valid=split)
    best = max(h["ndcg@100"] for h in model.history_)
    assert model.quality_["valid_ndcg@100"] == best and model.quality_["epoch"] == model.best_epoch_
    model.save(tmp_path / "m.recae")
    assert load(tmp_path / "m.recae").quality_ == model.quality_
    loaded, meta = load_model(tmp_path / "m.recae")
    assert ModelState(loaded, meta, None, 0).info()["quality"] == model.quality_
    assert not hasattr(MultDAE(epochs=1, random_state=0).fit(split.train), "quality_")  # no validation, no figure
    plain = EASE(l2=10.0).fit(split.train)
    assert ModelState(plain, {}, None, 0).info()["quality"] is None


def test_journal_is_durable_checksummed_and_refuses_foreign_files(tmp_path):
    from recae.serve import Journal, JournalError

    j = Journal(tmp_path / "j")
    assert j.append({"user": 1, "items": [2], "ratings": None}) == 1
    assert j.append({"user": "x", "items": [3, 4], "ratings": [1.0, 2.0]}) == 2
    j.close()
    j = Journal(tmp_path / "j")  # reopened: both records there, in order
    assert [s for s, _ in j.since(0)] == [1, 2] and j.since(1)[0][1]["user"] == "x"
    assert j._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert j._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    j.close()
    db = sqlite3.connect(tmp_path / "j")
    db.execute("UPDATE events SET payload = replace(payload, '[3, 4]', '[3, 5]') WHERE seq = 2")
    db.commit()
    db.close()
    with pytest.raises(JournalError, match="record 2 fails its CRC-32"):
        Journal(tmp_path / "j").since(0)
    other = sqlite3.connect(tmp_path / "other.db")
    other.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    other.execute("INSERT INTO meta VALUES ('kind', 'something else')")
    other.commit()
    other.close()
    with pytest.raises(JournalError, match="not a recae journal"):
        Journal(tmp_path / "other.db")
    (tmp_path / "text").write_text("not a database at all " * 100)
    with pytest.raises(JournalError, match="not a usable recae journal"):
        Journal(tmp_path / "text")


def test_session_folds_in_appended_history_and_replays_it(model, tmp_path):
    from recae.serve import Session

    s = Session(model, journal=tmp_path / "j")
    user, new = int(model.user_ids_[0]), 10**6
    items = [int(model.item_ids_[i]) for i in (1, 2, 3)]
    with pytest.raises(UnknownIdError, match=str(new)):
        s.recommend(new)
    assert s.update_history(new, items)["new_user"] is True
    ids, scores = model.recommend_new(items, n=5)
    got = s.recommend(new, n=5)
    assert got["items"] == ids.tolist() and np.allclose(got["scores"], scores)
    extra = [int(model.item_ids_[40])]
    s.update_history(user, extra, ratings=[2.0])
    hist = dict(zip(model.item_ids_[model.user_items_[0].indices].tolist(), model.user_items_[0].data.tolist()))
    hist[extra[0]] = 2.0
    ids, _ = model.recommend_new(hist, n=5)
    assert s.recommend(user, n=5)["items"] == ids.tolist()
    assert extra[0] not in s.recommend(user, n=50)["items"]
    s.close()
    again = Session(model, journal=tmp_path / "j")  # a restart replays the journal
    assert again.recommend(user, n=5)["items"] == ids.tolist() and again.stats["replayed"] == 4
    assert again.history(new)["items"] == sorted(items)
    with pytest.raises(DataError, match="one number per item"):
        again.update_history(user, extra, ratings=[1.0, 2.0])
    with pytest.raises(ModelFileError):
        again.reload(tmp_path / "missing.recae")
    assert again.model is model  # the refused reload left the model serving
    again.close()


def test_core_import_needs_no_fastapi_and_a_missing_one_says_how_to_install(tmp_path):
    probe = ("import sys; import recae, recae.serve, recae.cli; "
             "assert 'fastapi' not in sys.modules and 'uvicorn' not in sys.modules, 'imported at import time'")
    subprocess.run([sys.executable, "-c", probe], check=True, cwd=REPO, timeout=300)
    # a machine without the serve extra: the command says what to install, in one line
    blocked = ("import sys; sys.modules['fastapi'] = None; from recae.cli import main; "
               f"sys.exit(main(['serve', {str(tmp_path / 'm.recae')!r}]))")
    run = subprocess.run([sys.executable, "-c", blocked], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert run.returncode == 2 and "pip install 'recae[serve]'" in run.stderr and "Traceback" not in run.stderr
