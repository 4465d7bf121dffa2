"""Model files: atomic writes, refusal of anything that is not a recae model, exact id round trips."""

from __future__ import annotations

import json
import os
import pickle
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import recae
import recae.io
from recae import EASE, Interactions, Popularity
from recae.exceptions import ModelFileError, RecaeError


def small_log(user_ids=None, item_ids=None) -> Interactions:
    rng = np.random.default_rng(0)
    dense = (rng.random((8, 6)) < 0.5).astype(np.float32)
    dense[np.arange(8), np.arange(8) % 6] = 1.0  # every user and item has an entry
    return Interactions(sp.csr_matrix(dense), user_ids, item_ids)


@pytest.fixture
def ease() -> EASE:
    return EASE(l2=2.0, device="cpu").fit(small_log([f"u{i}" for i in range(8)], [f"i{j}" for j in range(6)]))


@pytest.fixture
def pop() -> Popularity:
    return Popularity(device="cpu").fit(small_log())


def read_raw(path) -> tuple[dict, dict]:
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["recae"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    return meta, tensors


def write_raw(path, meta: dict, tensors: dict, *, fix_meta_checksum: bool = True) -> None:
    """Write a model file by hand, as another (or a future) writer would."""
    meta = dict(meta)
    if fix_meta_checksum and "meta_sha256" in meta:
        meta["meta_sha256"] = recae.io._meta_checksum(meta)
    save_file(tensors, str(path), metadata={"recae": json.dumps(meta)})


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".recae-") or p.suffix == ".tmp")


# ---------------------------------------------------------------------------------- atomic save
class Crash(Exception):
    pass


def test_crash_mid_write_keeps_previous_file(ease, pop, tmp_path, monkeypatch):
    path = tmp_path / "model.recae"
    ease.save(path)
    before = path.read_bytes()

    def partial_write(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"partial")  # a few bytes, then the "crash"
        raise Crash("power cut")

    monkeypatch.setattr(recae.atomic, "save_file", partial_write)
    with pytest.raises(Crash):
        pop.save(path)
    assert path.read_bytes() == before
    assert leftovers(tmp_path) == []
    loaded = recae.load(path)
    assert type(loaded) is EASE and loaded.get_params() == ease.get_params()
    np.testing.assert_array_equal(loaded.recommend("u1", n=3)[0], ease.recommend("u1", n=3)[0])


def test_disk_full_is_a_model_file_error(ease, tmp_path, monkeypatch):
    path = tmp_path / "model.recae"
    ease.save(path)
    before = path.read_bytes()

    def full(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"\x00" * 10)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(recae.atomic, "save_file", full)
    with pytest.raises(ModelFileError, match=r"cannot save to .*model\.recae.*No space left"):
        ease.save(path)
    assert path.read_bytes() == before and leftovers(tmp_path) == []


def test_save_errors(ease, tmp_path):
    with pytest.raises(ModelFileError, match="cannot save"):
        ease.save(tmp_path / "no" / "such" / "dir" / "m.recae")
    with pytest.raises(ModelFileError, match="directory"):
        ease.save(tmp_path)
    assert leftovers(tmp_path) == []


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_saved_file_mode_follows_umask_and_existing_file(ease, tmp_path):
    old = os.umask(0o022)
    try:
        path = tmp_path / "m.recae"
        ease.save(path)  # mkstemp makes 0600 files; a model file should be like any other file
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        path.chmod(0o640)
        ease.save(path)  # overwriting keeps the existing file's mode
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
    finally:
        os.umask(old)


# ---------------------------------------------------------------------------------- refusals
class Payload:
    """Unpickling this creates a marker file: proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pickle_is_refused_and_never_unpickled(tmp_path):
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(Payload(probe)))
    assert probe.exists()  # the payload is live: unpickling does run it

    marker = tmp_path / "pwned"
    path = tmp_path / "model.recae"
    with open(path, "wb") as f:
        pickle.dump({"class": "EASE", "B": Payload(marker)}, f)
    for load in (recae.load, EASE.load, recae.Recommender.load):
        with pytest.raises(ModelFileError, match="not a recae model"):
            load(path)
    assert not marker.exists()
    torch_file = tmp_path / "torch.pt"
    torch.save({"B": torch.eye(3)}, torch_file)  # a torch.save zip (pickle inside)
    with pytest.raises(ModelFileError, match="not a recae model"):
        recae.load(torch_file)


def test_safetensors_without_recae_metadata(tmp_path):
    plain = tmp_path / "plain.safetensors"
    save_file({"B": torch.eye(3)}, str(plain))
    with pytest.raises(ModelFileError, match="no recae metadata"):
        recae.load(plain)
    other = tmp_path / "other.safetensors"
    save_file({"B": torch.eye(3)}, str(other), metadata={"format": "pt", "recae": json.dumps({"format": "other"})})
    with pytest.raises(ModelFileError, match="not a recae model .*'other'"):
        recae.load(other)


def test_newer_format_version_is_refused(ease, tmp_path):
    good = tmp_path / "good.recae"
    ease.save(good)
    meta, tensors = read_raw(good)
    assert meta["format_version"] == recae.io.FORMAT_VERSION
    meta["format_version"] = recae.io.FORMAT_VERSION + 1
    future = tmp_path / "future.recae"
    write_raw(future, meta, tensors)
    with pytest.raises(ModelFileError) as err:
        recae.load(future)
    msg = str(err.value)
    assert f"model format {recae.io.FORMAT_VERSION + 1}" in msg
    assert f"({recae.io.FORMAT_VERSION})" in msg and "upgrade recae" in msg
    for bad in (0, "1", None, True):
        meta["format_version"] = bad
        write_raw(future, meta, tensors)
        with pytest.raises(ModelFileError, match="format version"):
            recae.load(future)


@pytest.mark.parametrize("keep", [0, 7, 8, 100, 0.5, -1])
def test_truncated_file_is_refused(ease, tmp_path, keep):
    good = tmp_path / "good.recae"
    ease.save(good)
    raw = good.read_bytes()
    n = int(len(raw) * keep) if isinstance(keep, float) else (len(raw) + keep if keep < 0 else keep)
    cut = tmp_path / "cut.recae"
    cut.write_bytes(raw[:n])
    with pytest.raises(ModelFileError, match="not a recae model file"):
        recae.load(cut)


def test_unknown_class_is_refused_listing_known_ones(ease, tmp_path):
    good = tmp_path / "good.recae"
    ease.save(good)
    meta, tensors = read_raw(good)
    meta["class"] = "os.system"
    evil = tmp_path / "evil.recae"
    write_raw(evil, meta, tensors)
    with pytest.raises(ModelFileError, match=r"unknown model class 'os.system'; known: \[.*'EASE'.*'Popularity'"):
        recae.load(evil)


def test_corrupt_metadata_fails_checksum(ease, tmp_path):
    good = tmp_path / "good.recae"
    ease.save(good)
    meta, tensors = read_raw(good)
    meta["item_ids"][0] = "i9"  # string ids live in the metadata, not in the tensors
    bad = tmp_path / "bad.recae"
    write_raw(bad, meta, tensors, fix_meta_checksum=False)
    with pytest.raises(ModelFileError, match="checksum"):
        recae.load(bad)


def test_incomplete_file_is_a_model_file_error(ease, tmp_path):
    good = tmp_path / "good.recae"
    ease.save(good)
    meta, tensors = read_raw(good)
    del tensors["state.B"]
    meta["sha256"] = recae.io._checksum(tensors)
    bad = tmp_path / "bad.recae"
    write_raw(bad, meta, tensors)
    with pytest.raises(ModelFileError, match="incomplete or inconsistent EASE"):
        recae.load(bad)


def _rewritten(model, tmp_path, change):
    """A file of ``model`` that ``change(meta, tensors)`` altered, its checksums written to match."""
    good = tmp_path / "good.recae"
    model.save(good)
    meta, tensors = read_raw(good)
    change(meta, tensors)
    meta["sha256"] = recae.io._checksum(tensors)
    bad = tmp_path / "bad.recae"
    write_raw(bad, meta, tensors)
    return bad


def _shorten(key):
    def change(meta, tensors):
        tensors[key] = tensors[key][:-1].contiguous()
    return change


def _set(key, value):
    def change(meta, tensors):
        meta[key] = value
    return change


@pytest.mark.parametrize("change,message", [
    (_shorten("state.item_counts"), "its weights score 5 items, but it has 6 item ids"),  # item 5 never ranked
    (_set("user_ids_dtype", "|b1"), "user_ids do not fit their recorded dtype bool"),  # ids 0..7 collapsed to 2
    (_set("class", ["Popularity"]), r"unknown model class \['Popularity'\]"),
])
def test_a_file_that_does_not_hold_together_is_refused_at_load(pop, tmp_path, change, message):
    # checksums that match: a file written inconsistent, not damaged on the way
    with pytest.raises(ModelFileError, match=message):
        recae.load(_rewritten(pop, tmp_path, change))


def test_an_item_index_outside_the_catalogue_is_refused_at_load(ease, tmp_path):
    def change(meta, tensors):
        tensors["user_items.indices"] = tensors["user_items.indices"].clone()
        tensors["user_items.indices"][0] = 6  # one past the last of 6 items
    with pytest.raises(ModelFileError, match="incomplete or inconsistent EASE"):
        recae.load(_rewritten(ease, tmp_path, change))
    with pytest.raises(ModelFileError, match="incomplete or inconsistent EASE.*matmul"):
        recae.load(_rewritten(ease, tmp_path, _shorten("state.B")))


def test_settings_a_fit_would_refuse_are_refused_at_load(ease, tmp_path):
    def change(meta, tensors):
        meta["params"]["l2"] = "abc"
    with pytest.raises(ModelFileError, match="records settings EASE does not take: l2 must be a finite number"):
        recae.load(_rewritten(ease, tmp_path, change))


# ---------------------------------------------------------------------------------- loading
def test_device_override(ease, tmp_path):
    good = tmp_path / "good.recae"
    ease.save(good)
    meta, tensors = read_raw(good)
    meta["params"]["device"] = "cuda:99"  # as if trained on a GPU this machine does not have
    gpu = tmp_path / "gpu.recae"
    write_raw(gpu, meta, tensors)
    with pytest.raises(RecaeError, match="cuda:99"):
        recae.load(gpu)
    model = recae.load(gpu, device="cpu")
    assert model.device == "cpu" and model.device_ == torch.device("cpu")
    assert model.B_.device.type == "cpu"
    np.testing.assert_array_equal(model.recommend("u2", n=4)[0], ease.recommend("u2", n=4)[0])


@pytest.mark.parametrize("user_ids,item_ids", [
    (np.array([f"user {i}" for i in range(8)], dtype=object), np.array(["β", "a,b", "", "1", "x y", "é"], dtype=object)),
    (np.array([10, -3, 2**40, 7, 0, 5, 6, 8], dtype=np.int64), np.array([100, 2, 3, 4, 5, -1], dtype=np.int64)),
    (np.arange(8, dtype=np.int32) * 3, np.arange(6, dtype=np.int16) + 1),
    (np.array(list("abcdefgh")), np.array(["p", "q", "r", "s", "t", "u"])),  # numpy unicode arrays
])
def test_ids_round_trip_exactly(tmp_path, user_ids, item_ids):
    model = Popularity(device="cpu").fit(small_log(user_ids, item_ids))
    path = tmp_path / "m.recae"
    model.save(path)
    loaded = recae.load(path)
    for a, b in ((model.user_ids_, loaded.user_ids_), (model.item_ids_, loaded.item_ids_)):
        assert b.dtype == a.dtype
        np.testing.assert_array_equal(b, a)
        assert [type(x) for x in b.tolist()] == [type(x) for x in a.tolist()]
    user = model.user_ids_[3]
    for got, want in zip(loaded.recommend(user, n=3), model.recommend(user, n=3)):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


def test_ids_from_pandas_round_trip(tmp_path):
    df = pd.DataFrame({"user": ["b", "a", "a", "c"], "item": [3, 1, 2, 3]})
    model = Popularity(device="cpu").fit(Interactions.from_pandas(df))
    model.save(tmp_path / "m.recae")
    loaded = recae.load(tmp_path / "m.recae")
    assert loaded.user_ids_.dtype == object and loaded.user_ids_.tolist() == ["a", "b", "c"]
    assert loaded.item_ids_.dtype == np.int64 and loaded.item_ids_.tolist() == [1, 2, 3]
    assert loaded.recommend("c", n=2)[0].tolist() == [1, 2]


def test_load_as_the_wrong_class(pop, ease, tmp_path):
    path = tmp_path / "pop.recae"
    pop.save(path)
    with pytest.raises(RecaeError, match=r"holds a Popularity \(recommender model\), not an EASE; recae.load reads any model file"):
        EASE.load(path)
    assert isinstance(Popularity.load(path), Popularity)
    assert isinstance(recae.Recommender.load(path), Popularity)
    ease.save(tmp_path / "ease.recae")
    with pytest.raises(RecaeError, match=r"holds an EASE \(recommender model\), not a Popularity"):
        Popularity.load(tmp_path / "ease.recae")


def test_load_missing_file_and_directory(tmp_path):
    with pytest.raises(ModelFileError, match="no model file"):
        recae.load(tmp_path / "missing.recae")
    with pytest.raises(ModelFileError, match="no model file"):
        recae.load(tmp_path)


# ---------------------------------------------------------------------------------- SIGKILL
def _kill_after(proc, seconds: float) -> None:
    import signal
    import time

    time.sleep(seconds)
    assert proc.poll() is None, "the writer ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def test_sigkill_while_saving_leaves_a_loadable_file(tmp_path):
    """A process killed (SIGKILL) in the middle of saves never leaves a torn model file.

    The writer saves two different models to one path over and over; after each of two kills
    at different moments the file still loads, passes its checksums and is one of the two.
    """
    import subprocess
    import sys
    import textwrap

    path = tmp_path / "model.recae"
    script = textwrap.dedent(f"""
        import numpy as np, scipy.sparse as sp, torch, recae, sys
        torch.set_num_threads(1)
        X = sp.random(300, 500, density=0.05, random_state=0, format="csr", dtype=np.float32)
        X.data[:] = 1
        models = [recae.EASE(l2=l2, device="cpu").fit(X) for l2 in (10.0, 20.0)]
        models[0].save({str(path)!r})
        print("ready", flush=True)
        i = 0
        while True:
            i += 1
            models[i % 2].save({str(path)!r})
    """)
    for delay in (0.05, 0.3):
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                                env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert proc.stdout.readline().strip() == "ready"
        _kill_after(proc, delay)
        model = recae.load(path)  # raises ModelFileError on a torn or corrupt file
        assert model.l2 in (10.0, 20.0) and model.B_.shape == (500, 500)
    # a killed writer cannot remove its temporary file; it never replaces the model file itself
    assert all(name.startswith(".recae-") for name in leftovers(tmp_path))


@pytest.mark.parametrize("name,params,with_valid", [
    ("MultDAE", dict(hidden_dims=(16,), epochs=20, batch_size=10, random_state=0), False),
    ("MultVAE", dict(hidden_dims=(16,), latent_dim=4, epochs=20, batch_size=10, random_state=0, patience=50), True),
])
def test_sigkill_mid_epoch_then_resume(tmp_path, name, params, with_valid):
    """Kill training with SIGKILL during an epoch, resume from the checkpoint: same weights as one run."""
    import subprocess
    import sys
    import textwrap

    from recae.train import CHECKPOINT

    ckpt_dir = tmp_path / "ckpt"
    setup = textwrap.dedent("""
        import torch, recae
        from recae.datasets import synthetic
        torch.set_num_threads(1)
        data = synthetic(120, 60, random_state=3, ratings=False, timestamps=False)
        split = recae.strong_generalization_split(data, n_heldout=15, min_items=2, random_state=0)
    """)
    fit = (f"recae.{name}(**{params!r}).fit(split.train, valid=split if {with_valid} else None, "
           f"checkpoint_dir={str(ckpt_dir)!r}, resume=True, callbacks=[slow])")
    script = setup + textwrap.dedent(f"""
        import time
        def slow(model, epoch, logs):
            print(epoch, flush=True)
            time.sleep(0.15)  # the kill lands in the sleep or in the next epoch's batches
        {fit}
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    while int(proc.stdout.readline() or 99) < 4:  # wait until a few epochs are checkpointed
        pass
    _kill_after(proc, 0.2)
    with safe_open(str(ckpt_dir / CHECKPOINT), framework="pt") as f:
        done = len(json.loads(f.metadata()["recae_checkpoint"])["history"])
    assert 4 <= done < params["epochs"]  # it was interrupted part-way
    namespace: dict = {}
    exec(setup, namespace)
    split = namespace["split"]
    cls = getattr(recae, name)
    valid = split if with_valid else None
    resumed = cls(**params).fit(split.train, valid=valid, checkpoint_dir=ckpt_dir, resume=True)
    full = cls(**params).fit(split.train, valid=valid)
    assert [h["loss"] for h in resumed.history_] == [h["loss"] for h in full.history_]
    for key, value in full.module_.state_dict().items():
        torch.testing.assert_close(resumed.module_.state_dict()[key], value, rtol=0, atol=0)


def test_numpy_scalar_settings_save_as_numbers(tmp_path):
    # a setting taken from np.logspace or np.arange: before, save refused it after the whole fit
    X = sp.random(40, 15, density=0.3, format="csr", random_state=1)
    X.data[:] = 1.0
    model = recae.MultDAE(lr=np.float32(1e-3), random_state=np.int64(5), hidden_dims=(np.int64(16),),
                          epochs=2, device="cpu", show_progress=False).fit(Interactions(X))
    model.save(tmp_path / "m.recae")
    back = recae.load(tmp_path / "m.recae")
    assert back.get_params()["random_state"] == 5 and back.get_params()["hidden_dims"] == (16,)
    assert back.get_params()["lr"] == pytest.approx(1e-3)
    ids, scores = model.recommend([0, 1], n=5)
    back_ids, back_scores = back.recommend([0, 1], n=5)
    np.testing.assert_array_equal(ids, back_ids)
    np.testing.assert_allclose(scores, back_scores)
    EASE(l2=np.float32(10.0)).fit(Interactions(X)).save(tmp_path / "e.recae")
    with pytest.raises(ModelFileError, match="not JSON-serialisable"):  # an object that is no number stays refused
        recae.io.write_model_file(tmp_path / "x.recae", {"class": "EASE", "params": {"x": object()}},
                                  {"a": torch.zeros(1)})


def test_a_file_repeating_an_id_is_refused(ease, tmp_path):
    def same_items(meta, tensors):  # a hand-written file: before, it loaded and recommended one id n times
        meta["item_ids"] = [meta["item_ids"][0]] * len(meta["item_ids"])

    with pytest.raises(ModelFileError, match="incomplete or inconsistent EASE .*item_ids repeat an id"):
        recae.load(_rewritten(ease, tmp_path, same_items))



def test_save_refuses_a_setting_changed_after_fit(tmp_path, ease):
    """A file records the settings its weights were fitted with: a rank or l2 set later is named at save."""
    from recae import FactorEASE, ImageAutoencoder
    factored = FactorEASE(rank=3, epochs=1, device="cpu").fit(small_log())
    factored.set_params(rank=5)
    with pytest.raises(RecaeError, match=r"rank was set to 5 after fit, but its weights were fitted with rank=3"):
        factored.save(tmp_path / "f.recae")
    assert not (tmp_path / "f.recae").exists()
    factored.set_params(rank=3, popularity_exponent=0.5, show_progress=False)  # set back; scoring-time settings pass
    factored.save(tmp_path / "f.recae")
    assert recae.load(tmp_path / "f.recae").popularity_exponent == 0.5
    ease.set_params(l2=-5.0)
    with pytest.raises(RecaeError, match=r"l2 was set to -5.0 after fit.*Set it back with set_params, or fit again"):
        ease.save(tmp_path / "e.recae")
    ease.set_params(l2=7.0).fit(small_log())  # a refit records its own settings
    ease.save(tmp_path / "e.recae")
    loaded = recae.load(tmp_path / "e.recae")  # so does a load
    loaded.set_params(l2=8.0)
    with pytest.raises(RecaeError, match="l2 was set to 8.0 after fit, but its weights were fitted with l2=7.0"):
        loaded.save(tmp_path / "e2.recae")
    images = np.random.default_rng(0).random((8, 1, 4, 4), dtype=np.float32)
    image = ImageAutoencoder(arch="mlp", latent_dim=2, hidden_dims=(4,), epochs=1, device="cpu").fit(images)
    image.set_params(latent_dim=3)
    with pytest.raises(RecaeError, match="latent_dim was set to 3 after fit"):
        image.save(tmp_path / "i.recae")


def test_a_fold_in_uses_the_settings_the_factors_were_fitted_with(tmp_path):
    """ALS folds a new user in with its solver's settings: one set after fit would meet factors of
    another size (a raw implicit error) or another penalty (silently other scores than recommend's)."""
    from recae import ImplicitALS, LinearAE
    data = small_log()
    als = ImplicitALS(factors=4, iterations=2, regularization=1.0, device="cpu").fit(data)
    history = data.matrix[:2]
    before = als.recommend_new(history, n=3)
    als.set_params(factors=8, regularization=1e6)
    after = als.recommend_new(history, n=3)
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_array_equal(before[1], after[1])
    # a NumPy scalar setting compares as the number it is: set back to 3, it is the setting fitted
    linear = LinearAE(rank=np.int64(3), device="cpu").fit(data)
    linear.set_params(rank=3).save(tmp_path / "l.recae")
    assert recae.load(tmp_path / "l.recae").rank == 3
