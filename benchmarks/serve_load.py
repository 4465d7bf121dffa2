"""Load test of `recae serve` on localhost: EASE and MultVAE fitted on ML-1M.

Per model: fit (MultVAE: a short fit of a few epochs, enough for serving costs, not for its
quality), save, start `recae serve FILE` on a free 127.0.0.1 port (one worker, with its
journal), then

1. in-process: ``model.recommend(user, n=10)`` for random training users, one at a time, in
   this process (the library cost without HTTP), and
2. sequential HTTP: one client, ``GET /recommend?user=…&n=10``, one request at a time; the HTTP
   overhead is its p50 minus the in-process p50
   (the two alternate in half-second blocks for ``--seq-seconds``);
3. load: ``--clients`` concurrent clients (asyncio + httpx) for ``--duration`` seconds or
   ``--max-requests`` requests, whichever ends first; requests/s, p50/p99, errors (anything but
   a 200 with a full list), and the server's resident memory before and after.

The load generator runs on the same machine as the server and shares its cores.

    python benchmarks/serve_load.py [--data-dir ../shared/data] [--duration 60] [--clients 32]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import httpx
import numpy as np
import torch

from recae import EASE, MultVAE
from recae.datasets import load_movielens

from _env import environment, header_markdown

OUT = Path(__file__).resolve().parent / "results"
N = 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return kb / 1024


def pct(times, q) -> float:
    return float(np.percentile(np.asarray(times) * 1000, q))


def paired(model, url, users, seconds: float, block: float = 0.5):
    """In-process ``recommend``, one-client HTTP ``/recommend`` (two clients) and ``/health``, in turn.

    Alternating in short blocks keeps them comparable when the machine's load drifts during the
    run; ``/health`` does no model work, so its latency is the HTTP stack's own floor. The HTTP
    requests go through the standard library's ``http.client`` on one keep-alive connection (a
    client that costs little, so the figure is the server's) and through ``httpx`` (what a
    Python service would use; its own per-request cost adds about a millisecond here).
    """
    series = {"local": [], "raw": [], "httpx": [], "health": []}
    errors, k, end = 0, 0, time.perf_counter() + seconds
    raw = http.client.HTTPConnection(urlsplit(url).hostname, urlsplit(url).port, timeout=60)

    def get_raw(path: str):
        raw.request("GET", path)
        r = raw.getresponse()
        return r.status, r.read()

    def get_httpx(path: str, params: dict):
        r = client.get(path, params=params)
        return r.status_code, r.content

    def timed(name: str, call, duration: float):
        nonlocal errors, k
        stop = time.perf_counter() + duration
        while time.perf_counter() < stop:
            t = time.perf_counter()
            errors += not call(users[k % len(users)])
            series[name].append(time.perf_counter() - t)
            k += 1

    def full(status: int, body) -> bool:
        return status == 200 and len(json.loads(body)["items"]) == N

    with httpx.Client(base_url=url, timeout=60) as client:
        while time.perf_counter() < end:
            timed("local", lambda u: len(model.recommend(u, n=N)[0]) == N, block)
            timed("raw", lambda u: full(*get_raw(f"/recommend?{urlencode({'user': u, 'n': N})}")), block)
            timed("httpx", lambda u: full(*get_httpx("/recommend", {"user": u, "n": N})), block)
            timed("health", lambda u: get_raw("/health")[0] == 200, block / 2)
    raw.close()
    return series, errors


async def load(url, users, clients: int, seconds: float, max_requests: int) -> tuple[list[float], int, float]:
    times, errors, sent = [], [0], [0]
    end = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
        async def client(c: int):
            rng = np.random.default_rng(c)
            while time.perf_counter() < end and sent[0] < max_requests:
                sent[0] += 1
                t = time.perf_counter()
                try:
                    r = await http.get("/recommend", params={"user": users[rng.integers(len(users))], "n": N})
                    ok = r.status_code == 200 and len(r.json()["items"]) == N
                except httpx.HTTPError:
                    ok = False
                times.append(time.perf_counter() - t)
                errors[0] += not ok

        start = time.perf_counter()
        await asyncio.gather(*(client(c) for c in range(clients)))
        wall = time.perf_counter() - start
    return times, errors[0], wall


def serve(path: Path, folder: Path, threads: int):
    port = free_port()
    log = open(folder / f"server-{port}.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "recae.cli", "serve", str(path), "--port", str(port),
                             "--device", "cpu", "--threads", str(threads)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"server did not start: {(folder / f'server-{port}.log').read_text()}")


def run_model(name, model, data, folder, args) -> dict:
    path = folder / f"{name}.recae"
    model.save(path)
    rng = np.random.default_rng(0)
    users = [int(u) for u in rng.choice(model.user_ids_, size=500, replace=False)]
    proc, url = serve(path, folder, args.threads)
    try:
        paired(model, url, users, 2.0)  # warm-up
        series, seq_errors = paired(model, url, users, args.seq_seconds)
        local, seq, health = series["local"], series["raw"], series["health"]
        rss_start = rss_mib(proc.pid)
        times, errors, wall = asyncio.run(load(url, users, args.clients, args.duration, args.max_requests))
        rss_end = rss_mib(proc.pid)
        metrics_500 = 'status="500"' in httpx.get(f"{url}/metrics").text
    finally:
        proc.terminate()
        proc.wait(60)
    return {"model": name, "inproc_p50_ms": pct(local, 50), "inproc_p99_ms": pct(local, 99),
            "seq_p50_ms": pct(seq, 50), "seq_p99_ms": pct(seq, 99), "health_p50_ms": pct(health, 50), "seq_requests": len(seq), "seq_errors": seq_errors,
            "overhead_p50_ms": pct(seq, 50) - pct(local, 50),
            "httpx_p50_ms": pct(series["httpx"], 50), "httpx_overhead_p50_ms": pct(series["httpx"], 50) - pct(local, 50), "requests": len(times), "wall_s": wall,
            "rps": len(times) / wall, "p50_ms": pct(times, 50), "p99_ms": pct(times, 99), "errors": errors,
            "any_500": metrics_500, "rss_start_mib": rss_start, "rss_end_mib": rss_end}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of concurrent load per model")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--max-requests", type=int, default=200_000)
    ap.add_argument("--seq-seconds", type=float, default=20.0, help="seconds of alternating in-process/1-client HTTP")
    ap.add_argument("--threads", type=int, default=1, help="torch threads, in this process and the server")
    ap.add_argument("--vae-epochs", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    env = environment()
    data = load_movielens("1m", data_dir=args.data_dir, download=False).binarize(3.5).filter(min_user=5)
    models = {"EASE": lambda: EASE(l2=500.0, device="cpu"),
              "MultVAE": lambda: MultVAE(epochs=args.vae_epochs, device="cpu", random_state=0)}
    rows, fits = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, make in models.items():
            t = time.perf_counter()
            model = make().fit(data)
            fits[name] = time.perf_counter() - t
            rows.append(run_model(name, model, data, Path(tmp), args))
            print(json.dumps(rows[-1]), flush=True)
    load_avg = os.getloadavg()
    OUT.mkdir(exist_ok=True)
    (OUT / "serve_load.json").write_text(json.dumps({"env": env, "args": vars(args), "rows": rows, "fit_s": fits,
                                                     "loadavg_end": load_avg}, indent=2))
    lines = ["# `recae serve` under load: EASE and MultVAE on ML-1M", "", header_markdown(env),
             f"ML-1M positives (ratings > 3.5, users with >= 5): {data.n_users} users × {data.n_items} items. "
             f"EASE l2=500; MultVAE fitted for {args.vae_epochs} epochs only (serving cost, not quality). "
             f"One server worker, journal on, CPU, {args.threads} torch thread(s) in the server and in-process; `GET /recommend?user=…&n={N}` for random training users. "
             f"Load: {args.clients} concurrent clients (asyncio + httpx) for {args.duration:g} s or "
             f"{args.max_requests} requests; the client runs on the same machine. "
             f"Load average at the end of the run: {load_avg[0]:.1f} / {load_avg[1]:.1f} / {load_avg[2]:.1f} "
             f"on {os.cpu_count()} cores (other work shared the machine).", "",
             "| model | in-process p50 / p99 ms | 1 client HTTP p50 / p99 ms | HTTP overhead p50 ms | with httpx: p50 / overhead ms | /health p50 ms "
             f"| {args.clients} clients: req/s | p50 / p99 ms | requests | errors | server RSS start → end MiB |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['inproc_p50_ms']:.2f} / {r['inproc_p99_ms']:.2f} | "
                     f"{r['seq_p50_ms']:.2f} / {r['seq_p99_ms']:.2f} | {r['overhead_p50_ms']:.2f} | "
                     f"{r['httpx_p50_ms']:.2f} / {r['httpx_overhead_p50_ms']:.2f} | {r['health_p50_ms']:.2f} | "
                     f"{r['rps']:.0f} | "
                     f"{r['p50_ms']:.1f} / {r['p99_ms']:.1f} | {r['requests']} | {r['errors'] + r['seq_errors']} | "
                     f"{r['rss_start_mib']:.0f} → {r['rss_end_mib']:.0f} |")
    lines += ["", "HTTP overhead = one-client HTTP p50 − in-process `recommend` p50, measured alternately in half-second blocks in this run, "
              "the HTTP client being the standard library's `http.client` on one keep-alive connection; the httpx column is the same "
              "requests through `httpx.Client`, whose own cost is part of its figure; "
              "`/health` (no model work) in the same blocks is the HTTP stack's floor. "
              "Errors count any answer but a 200 with a full list, in both HTTP phases; "
              f"a 500 in the server's /metrics: {any(r['any_500'] for r in rows)}. Fit times (s): "
              + ", ".join(f"{k} {v:.1f}" for k, v in fits.items()) + "."]
    (OUT / "serve_load.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
