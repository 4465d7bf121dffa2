"""Data-parallel training under torchrun: 2 gloo processes on the CPU against one process.

The worker below is launched with ``python -m torch.distributed.run --standalone
--nproc_per_node=2`` (what ``torchrun`` runs) and, unchanged, as a plain single process; the
two runs use the same global batch. No GPU is lent to this project's CI, so the NCCL variant
skips unless two CUDA devices are present.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import recae
from recae import distributed

WORKER = textwrap.dedent('''
    import json, os, sys
    import torch
    torch.set_num_threads(1)
    import recae
    from recae import distributed

    out_dir, device = sys.argv[1], sys.argv[2]
    log = recae.datasets.synthetic(n_users=400, n_items=150, n_interactions=8000, random_state=1)
    split = recae.strong_generalization_split(log, 0.15, random_state=0)
    # batch sizes chosen so the last global batch splits unevenly (49: 35 rows) or leaves a
    # rank with no row at all (93: 280 training users = 3·93 + 1)
    runs = [(recae.MultDAE, dict(hidden_dims=(32,), batch_size=49, lr=3e-3)),
            (recae.MultVAE, dict(hidden_dims=(64,), latent_dim=16, batch_size=50, lr=3e-3, anneal_steps=100)),
            (recae.RecVAE, dict(hidden_dim=32, latent_dim=16, batch_size=50, n_enc_epochs=2)),
            (recae.CDAE, dict(hidden_dim=32, batch_size=93, lr=3e-3))]
    result = {}
    for cls, kw in runs:
        ckpt = os.path.join(out_dir, f"ckpt-{cls.__name__}-{os.environ.get('WORLD_SIZE', 1)}")
        m = cls(epochs=5, random_state=0, patience=None, device=device, **kw).fit(
            split.train, valid=split, checkpoint_dir=ckpt)
        w = torch.cat([p.detach().flatten().cpu() for p in m.module_.parameters()])
        top, _ = m.recommend(split.train.user_ids[:20], n=10)
        result[cls.__name__] = {"ndcg": [h["ndcg@100"] for h in m.history_], "loss": [h["loss"] for h in m.history_],
                                "weights": w.double().sum().item(), "top": top.tolist()}
        m.save(os.path.join(out_dir, f"{cls.__name__}-w{distributed.world_size()}-r{distributed.rank()}"))
    # explicit ratings: masked MSE, normalised per row (AutoRec) or per rating (BiasedMF)
    import numpy as np, pandas as pd
    rng = np.random.default_rng(5)
    u, i = np.nonzero(rng.random((300, 90)) < 0.2)
    taste = rng.normal(size=(300, 3)) @ rng.normal(size=(3, 90))
    ratings = recae.Interactions.from_pandas(pd.DataFrame(
        {"user": u, "item": i, "rating": np.clip(np.round(3 + taste[u, i]), 1, 5)}), rating="rating")
    held = np.arange(ratings.nnz) % 10 == 0
    rsplit = recae.HoldoutSplit(ratings.filter_entries(~held), ratings.filter_entries(held), ratings.filter_entries(held))
    # 90 items in batches of 31 (31 + 31 + 28, odd halves); 300 users in batches of 49 (a 6-row last batch)
    for name, cls, kw in [("I-AutoRec", recae.AutoRec, dict(hidden=16, batch_size=31, lr=3e-2, l2=10.0)),
                          ("U-AutoRec", recae.AutoRec, dict(orient="user", hidden=16, batch_size=49, lr=1e-2, l2=1.0)),
                          ("BiasedMF", recae.BiasedMF, dict(factors=4, batch_size=49, lr=1e-2))]:
        m = cls(epochs=5, random_state=0, patience=None, device=device, **kw).fit(rsplit.train, valid=rsplit)
        w = torch.cat([p.detach().flatten().cpu() for p in m.module_.parameters()])
        coo = rsplit.valid.matrix.tocoo()
        pred = m.predict(rsplit.valid.user_ids[coo.row[:50]], rsplit.valid.item_ids[coo.col[:50]])
        result[name] = {"rmse": [h["rmse"] for h in m.history_], "loss": [h["loss"] for h in m.history_],
                        "weights": w.double().sum().item(), "pred": pred.tolist()}
    try:
        recae.AutoRec(optimizer="lbfgs", lr=1.0, epochs=1, device=device).fit(rsplit.train)
        result["lbfgs"] = "trained"
    except recae.exceptions.TrainingError as exc:
        result["lbfgs"] = str(exc)
    # rank-local rows: each rank reads only its Parquet row groups (the 1-process run reads all)
    shard = distributed.read_parquet_shard(os.path.join(out_dir, "train.parquet"), split.train.item_ids)
    m = recae.MultDAE(hidden_dims=(32,), batch_size=50, lr=3e-3, epochs=5, random_state=0, patience=None,
                      device=device).fit(shard, valid=split, local_rows=True)
    result["local"] = {"ndcg": [h["ndcg@100"] for h in m.history_], "loss": [h["loss"] for h in m.history_],
                       "users": shard.n_users}
    # weight averaging over unequal shards: every rank must still end with the same averaged model
    v = recae.MultVAE(hidden_dims=(32,), latent_dim=8, batch_size=50, lr=3e-3, epochs=3, random_state=0,
                      patience=None, device=device, weight_averaging=0.5).fit(shard, valid=split, local_rows=True)
    result["local_vae"] = {"weights": torch.cat([p.detach().flatten().cpu() for p in v.module_.parameters()]).double().sum().item(),
                           "ndcg": [h["ndcg@100"] for h in v.history_]}
    # random_state=None draws one seed for the job, and the image model's noise is the global
    # batch's: the ranks' shuffling generators stay in step (before, they drifted apart)
    import hashlib
    def states(seen):
        def cb(model, epoch, logs):
            seen.append(hashlib.sha256(model._trainer.generator.get_state().numpy().tobytes()).hexdigest())
            return False
        return [cb]
    result["seedless"], result["image_noise"] = [], []
    recae.MultDAE(hidden_dims=(16,), batch_size=49, epochs=2, random_state=None, patience=None,
                  device=device).fit(split.train, callbacks=states(result["seedless"]))
    images = np.random.default_rng(0).random((203, 1, 8, 8), dtype=np.float32)
    recae.ImageAutoencoder(arch="mlp", hidden_dims=(16,), latent_dim=4, noise=0.2, batch_size=25, epochs=2,
                           device=device).fit(images, callbacks=states(result["image_noise"]))
    # fit joined torchrun's process group itself (the script never initialises it)
    result.update(world=distributed.world_size(), rank=distributed.rank())
    with open(os.path.join(out_dir, f"result-w{distributed.world_size()}-r{distributed.rank()}.json"), "w") as f:
        json.dump(result, f)
''')

MODELS = ("MultDAE", "MultVAE", "RecVAE", "CDAE")


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return env


def _write_parquet(tmp_path) -> int:
    """The worker's training log as Parquet, sorted by user, 4 unequal row groups on user boundaries."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    log = recae.datasets.synthetic(n_users=400, n_items=150, n_interactions=8000, random_state=1)
    train = recae.strong_generalization_split(log, 0.15, random_state=0).train
    coo = train.matrix.tocoo()
    users, items = train.user_ids[coo.row], train.item_ids[coo.col]
    # unequal groups (1/7, 1/4, 9/28, 2/7 of the users): the two ranks get shards of different sizes
    cuts = np.round(np.array([0, 40, 110, 200, 280]) * train.n_users / 280).astype(int)
    bounds = np.searchsorted(coo.row, cuts)
    with pq.ParquetWriter(tmp_path / "train.parquet", pa.schema([("user", pa.int64()), ("item", pa.int64())])) as w:
        for a, b in zip(bounds[:-1], bounds[1:]):
            w.write_table(pa.table({"user": users[a:b].astype(np.int64), "item": items[a:b].astype(np.int64)}))
    return train.n_users


def _launch(tmp_path, nproc: int, device: str) -> None:
    if not (tmp_path / "train.parquet").exists():
        _write_parquet(tmp_path)
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"] \
        if nproc > 1 else [sys.executable]
    for attempt in (1, 2):
        for old in tmp_path.glob(f"result-w{nproc}-r*.json"):
            old.unlink()
        proc = subprocess.run([*launcher, str(script), str(tmp_path), device], env=_env(), capture_output=True,
                              text=True, timeout=240)
        # a gloo rank aborted in the interpreter's teardown after all its work was done and written
        # (5 of 193 two-rank runs) until recae.distributed kept its last barrier's handle (0 of 160,
        # benchmarks/results/ddp_exit_loop.md): that failure alone is still retried once, since 160
        # runs cannot rule out a rarer one; any other failure fails the test
        finished = len(list(tmp_path.glob(f"result-w{nproc}-r*.json"))) == nproc
        if proc.returncode == 0 or attempt == 2 or not (
                finished and "terminate called without an active exception" in proc.stderr):
            break
    assert proc.returncode == 0, proc.stderr[-4000:]


def _read(tmp_path, world: int, rank: int) -> dict:
    return json.loads((tmp_path / f"result-w{world}-r{rank}.json").read_text())


@pytest.fixture(scope="module")
def gloo_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ddp")
    _launch(tmp, 1, "cpu")
    _launch(tmp, 2, "cpu")
    return tmp


def test_two_gloo_processes_match_one_process(gloo_runs):
    one = _read(gloo_runs, 1, 0)
    two = [_read(gloo_runs, 2, r) for r in (0, 1)]
    assert one["world"] == 1 and [t["world"] for t in two] == [2, 2] and [t["rank"] for t in two] == [0, 1]
    for name in MODELS:
        a, b = one[name], two[0][name]
        # the stated tolerance: validation NDCG@100 within 0.005 at every epoch
        assert np.max(np.abs(np.subtract(a["ndcg"], b["ndcg"]))) <= 0.005, (name, a["ndcg"], b["ndcg"])
        # what is actually achieved: the same global batches and noise, so only float summation differs
        np.testing.assert_allclose(a["loss"], b["loss"], rtol=1e-4, err_msg=name)
        assert b["weights"] == pytest.approx(a["weights"], rel=1e-4), name
        # converges: validation NDCG rises clearly over 5 epochs and the loss falls below its start
        # (the epoch loss is a mean of batch means, so CDAE's 1-row last batch makes it jumpy)
        assert min(b["loss"][1:]) < b["loss"][0], name
        assert b["ndcg"][-1] > b["ndcg"][0] + 0.05, (name, b["ndcg"])
        # both ranks end with the same model, history and rankings
        assert two[1][name]["ndcg"] == b["ndcg"] and two[1][name]["top"] == b["top"], name
        assert two[1][name]["weights"] == b["weights"], name


def test_ranks_draw_one_stream_without_a_seed_and_with_image_noise(gloo_runs):
    two = [_read(gloo_runs, 2, r) for r in (0, 1)]
    for key in ("seedless", "image_noise"):
        assert len(two[0][key]) == 2 and two[0][key] == two[1][key], key
    # the image model's noise draws the global batch's noise: one process consumes its generator alike
    assert _read(gloo_runs, 1, 0)["image_noise"] == two[0]["image_noise"]


def test_explicit_models_two_gloo_processes_match_one_process(gloo_runs):
    one = _read(gloo_runs, 1, 0)
    two = [_read(gloo_runs, 2, r) for r in (0, 1)]
    for name in ("I-AutoRec", "U-AutoRec", "BiasedMF"):
        a, b = one[name], two[0][name]
        # the per-rank weights make DDP's average the global batch's gradient: only float summation differs
        np.testing.assert_allclose(a["loss"], b["loss"], rtol=1e-4, err_msg=name)
        np.testing.assert_allclose(a["rmse"], b["rmse"], rtol=1e-4, err_msg=name)
        assert b["weights"] == pytest.approx(a["weights"], rel=1e-4), name
        np.testing.assert_allclose(a["pred"], b["pred"], atol=1e-3, err_msg=name)
        # it learns: the training objective falls and so does the validation error
        assert b["loss"][-1] < b["loss"][0] and b["rmse"][-1] < b["rmse"][0], (name, b["loss"], b["rmse"])
        assert two[1][name]["rmse"] == b["rmse"] and two[1][name]["pred"] == b["pred"], name
    assert one["lbfgs"] == "trained"
    assert "trains in one process" in two[0]["lbfgs"] and "lbfgs" in two[0]["lbfgs"]


def test_rank_local_parquet_shards(gloo_runs):
    one, two = _read(gloo_runs, 1, 0), [_read(gloo_runs, 2, r) for r in (0, 1)]
    # each rank read two of the four row groups: disjoint shards that cover the training users
    assert two[0]["local"]["users"] + two[1]["local"]["users"] == one["local"]["users"] == 280
    assert 0 < two[1]["local"]["users"] < 280 and two[0]["local"]["users"] != two[1]["local"]["users"]
    a, b = one["local"]["ndcg"], two[0]["local"]["ndcg"]
    assert two[1]["local"]["ndcg"] == b  # rank 0's score, broadcast
    # other batches than one process (each rank shuffles its own shard), so close but not equal
    assert b[-1] > b[0] + 0.05 and abs(a[-1] - b[-1]) <= 0.03, (a, b)
    assert abs(one["MultDAE"]["ndcg"][-1] - a[-1]) <= 0.03  # a Parquet-read log trains like the in-memory one
    # shards of different sizes, one averaged model on both ranks
    assert two[0]["local_vae"]["weights"] == two[1]["local_vae"]["weights"]
    assert two[0]["local_vae"]["ndcg"] == two[1]["local_vae"]["ndcg"]


def test_rank_zero_alone_checkpoints_and_saves(gloo_runs):
    for name in MODELS:
        written = sorted(p.name for p in (gloo_runs / f"ckpt-{name}-2").iterdir())
        assert written == ["checkpoint.safetensors"], written
        assert (gloo_runs / f"{name}-w2-r0").exists()
        assert not (gloo_runs / f"{name}-w2-r1").exists()
    loaded = recae.load(gloo_runs / "MultDAE-w2-r0")
    assert isinstance(loaded, recae.MultDAE) and loaded.n_items_ == 150


def test_single_process_helpers_without_a_group(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert not distributed.is_distributed()
    assert (distributed.rank(), distributed.world_size(), distributed.is_main_process()) == (0, 1, True)
    assert distributed.init() is False  # a single process: nothing to initialise
    assert not torch.distributed.is_initialized()


def test_batch_slice_draws_the_global_batch_noise():
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    full = torch.rand((7, 4), generator=g1)
    part = distributed.rand((3, 4), distributed.BatchSlice(g2, 7, 4), torch.device("cpu"))
    assert torch.equal(part, full[4:7])
    assert torch.equal(g1.get_state(), g2.get_state())  # both generators advanced alike


@pytest.mark.skipif(torch.cuda.device_count() < 2 or not torch.distributed.is_nccl_available(),
                    reason="the NCCL path needs 2 CUDA devices; none is lent to this project's CI")
def test_two_nccl_processes_match_one_process(tmp_path):
    _launch(tmp_path, 1, "cuda")
    _launch(tmp_path, 2, "cuda")
    one, two = _read(tmp_path, 1, 0), _read(tmp_path, 2, 0)
    for name in MODELS:
        assert np.max(np.abs(np.subtract(one[name]["ndcg"], two[name]["ndcg"]))) <= 0.005, name


def test_local_rows_is_ignored_in_a_single_process(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    log = recae.datasets.synthetic(n_users=60, n_items=40, n_interactions=600, random_state=0)
    kw = dict(hidden_dims=(8,), epochs=2, batch_size=16, random_state=0)
    a = recae.MultDAE(**kw).fit(log)
    b = recae.MultDAE(**kw).fit(log, local_rows=True)
    for (k, v), w in zip(a.module_.state_dict().items(), b.module_.state_dict().values()):
        assert torch.equal(v, w), k
