"""Top-k over score blocks: rows in chunks, and items in chunks for catalogues too large for a block.

Every ranking in recae (``recommend``, ``recommend_new``, ``similar_items``, validation)
runs through :func:`top_k`. A model's scores come either as a dense ``(rows, items)``
tensor or, for decoders over huge catalogues, as :class:`FactoredScores` (``layer(hidden)``
kept unevaluated), which :func:`top_k` ranks over item chunks so that no ``rows × items``
block is ever formed.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from ..data.batching import csr_coords, row_chunks
from ..exceptions import TrainingError


def check_scores(s: torch.Tensor, owner: str, start: int) -> None:
    """Scores must be finite or -inf (a mask): a NaN or +inf would rank garbage as if it were real."""
    if bool(torch.isfinite(s.sum())):  # one pass: a NaN or +inf anywhere makes the sum NaN or +inf
        return
    bad = torch.isnan(s) | torch.isposinf(s)
    if bool(bad.any()):
        row = int(bad.any(dim=1).nonzero()[0, 0]) + start
        raise TrainingError(
            f"{owner} produced {int(bad.sum())} NaN or +inf score(s) (first in row {row}); "
            "expected finite scores. Either the input's values are so large that the scores overflow float32 "
            "(scale them down), or its weights have diverged (refit; a trained model with a lower lr)"
        )


class FactoredScores:
    """Scores kept as ``layer(hidden)`` so top-k can run over item chunks (never B × I at once).

    Parameters
    ----------
    hidden : Tensor of shape (B, h)
    layer : nn.Linear (h → I)
    """

    def __init__(self, hidden: torch.Tensor, layer: nn.Linear):
        self.hidden, self.layer = hidden, layer

    def chunk(self, start: int, stop: int, out: torch.Tensor | None = None) -> torch.Tensor:
        """Scores of items ``start…stop`` (B, stop - start), float32; written into ``out`` when given."""
        w = self.layer.weight[start:stop]
        b = None if self.layer.bias is None else self.layer.bias[start:stop]
        h = self.hidden.to(w.dtype)
        if out is None or w.dtype != out.dtype or w.device != out.device:
            return nn.functional.linear(h, w, b).float()
        # the ops nn.functional.linear runs, into a reused block: a fresh 128 MiB block per chunk costs
        # its page faults, as much as the product itself at small ranks on a CPU
        return torch.mm(h, w.T, out=out) if b is None else torch.addmm(b, h, w.T, out=out)


def _keep(v: torch.Tensor, i: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    top = torch.topk(v, min(k, v.shape[1]), dim=1)
    return top.values, torch.gather(i, 1, top.indices)


def _merge(best_v, best_i, s: torch.Tensor, lo: int, k: int, hit: torch.Tensor | None = None):
    """The running top-``k`` (rows sorted descending) merged with the chunk ``s`` of columns ``lo…``.

    Once a row holds ``k`` finite scores only the chunk's entries at or above its k-th best can
    enter, and after the first chunks they are few: they are gathered by one comparison instead
    of a top-k over the whole chunk, which costs several times the comparison on a CPU.
    """
    if best_v is None or best_v.shape[1] < k:
        top = torch.topk(s, min(k, s.shape[1]), dim=1)
        v, i = top.values, top.indices + lo
        return (v, i) if best_v is None else _keep(torch.cat([best_v, v], 1), torch.cat([best_i, i], 1), k)
    tau = best_v[:, -1:]
    short = torch.isneginf(tau[:, 0])  # rows with fewer than k allowed items so far: the whole chunk competes
    hit = torch.ge(s, tau, out=hit)
    if bool(short.any()):
        hit[short] = False
        rows = short.nonzero()[:, 0]
        top = torch.topk(s[rows], min(k, s.shape[1]), dim=1)
        best_v[rows], best_i[rows] = _keep(torch.cat([best_v[rows], top.values], 1),
                                           torch.cat([best_i[rows], top.indices + lo], 1), k)
    if hit.device.type == "cpu":  # numpy's flat scan of a mostly-false mask is several times torch's nonzero
        flat = torch.from_numpy(np.flatnonzero(hit.numpy()))
        r, c = flat // hit.shape[1], flat % hit.shape[1]
    else:
        r, c = hit.nonzero(as_tuple=True)
    if len(r):
        counts = torch.bincount(r, minlength=s.shape[0])
        pos = torch.arange(len(r), device=s.device) - (torch.cumsum(counts, 0) - counts)[r]
        width = int(counts.max())
        cand_v = s.new_full((s.shape[0], width), -torch.inf)
        cand_i = best_i.new_zeros((s.shape[0], width))  # pads stay -inf, under every row's k finite scores
        cand_v[r, pos], cand_i[r, pos] = s[r, c], c + lo
        rows = counts.nonzero()[:, 0]
        best_v[rows], best_i[rows] = _keep(torch.cat([best_v[rows], cand_v[rows]], 1),
                                           torch.cat([best_i[rows], cand_i[rows]], 1), k)
    return best_v, best_i


def _scratch(store: dict, n: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """A float32 and a bool block of at least ``n`` elements on ``device``, kept in ``store`` for reuse."""
    if store.get("n", -1) < n or store["device"] != device:
        store.update(n=n, device=device, scores=torch.empty(n, device=device),
                     hits=torch.empty(n, dtype=torch.bool, device=device))
    return store["scores"], store["hits"]


def _chunked_topk(scores: FactoredScores, k: int, n_items: int, item_chunk: int, seen, mask, check, store=None):
    """Top-``k`` of ``scores`` over item chunks: peak memory B × (item_chunk + k); (values, indices).

    ``store``: a dict that keeps the chunk's blocks between calls (one ranking's row blocks).
    """
    best_v = best_i = None
    rows = scores.hidden.shape[0]
    buf, hits = _scratch({} if store is None else store, rows * min(item_chunk, n_items), scores.hidden.device)
    for lo in range(0, n_items, item_chunk):
        hi = min(lo + item_chunk, n_items)
        width = rows * (hi - lo)
        s = scores.chunk(lo, hi, out=buf[:width].view(rows, hi - lo))
        check(s)
        if mask is not None:
            s.masked_fill_(~mask[lo:hi], -torch.inf)
        if seen is not None:
            part = seen[:, lo:hi]
            if part.nnz:
                s[csr_coords(part, s.device)] = -torch.inf
        best_v, best_i = _merge(best_v, best_i, s, lo, k, hits[:width].view(rows, hi - lo))
    return best_v, best_i


@torch.no_grad()  # ranking never needs gradients; a model's scorer may forget to turn them off
def top_k(dense, seen: sp.csr_matrix | None, n_rows: int, n: int, mask, *, n_items: int, owner: str,
          factored=None, item_chunk: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-``n`` item indices and scores for ``n_rows`` rows.

    Parameters
    ----------
    dense : callable ``(start, stop) -> Tensor`` of shape (stop - start, n_items)
    seen : CSR rows of shape (n_rows, n_items) to leave out, or None
    mask : bool Tensor of shape (n_items,) of allowed candidates, or None
    factored : callable ``(start, stop) -> FactoredScores``, optional
        Used instead of ``dense`` when ``n_items > item_chunk``: rows and items both in chunks.

    Returns
    -------
    ids : ndarray of int64, shape (n_rows, min(n, candidates)); -1 where fewer candidates are left
    scores : ndarray of float32, same shape

    Items with equal scores come in the order ``torch.topk`` gives them (fixed for a given input
    on one machine, but not by item index); a metric of a model with many ties (popularity)
    can move in its fourth decimal with that order.
    """
    k = min(n, n_items if mask is None else int(mask.sum()))
    ids = np.empty((n_rows, k), dtype=np.int64)
    scores = np.empty((n_rows, k), dtype=np.float32)
    chunked = factored is not None and item_chunk is not None and n_items > item_chunk
    store: dict = {}
    for start, stop in row_chunks(n_rows, item_chunk if chunked else n_items):
        if chunked:
            part_seen = seen[start:stop] if seen is not None else None
            v, i = _chunked_topk(factored(start, stop), k, n_items, item_chunk, part_seen, mask,
                                 lambda s, a=start: check_scores(s, owner, a), store)
        else:
            s = dense(start, stop).float()
            check_scores(s, owner, start)
            if mask is not None:
                s = s.masked_fill(~mask, -torch.inf)
            if seen is not None:
                s[csr_coords(seen[start:stop], s.device)] = -torch.inf
            top = torch.topk(s, k, dim=1)
            v, i = top.values, top.indices
        ids[start:stop] = i.cpu().numpy()
        scores[start:stop] = v.cpu().numpy()
    ids[~np.isfinite(scores)] = -1
    return ids, scores


def cosine_rows(vectors: torch.Tensor, cols) -> torch.Tensor:
    """Cosines ``(len(cols), n)`` between ``vectors[cols]`` and every row of ``vectors`` ``(n, d)``."""
    unit = vectors / vectors.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return unit[torch.as_tensor(cols, device=unit.device)] @ unit.T


def to_raw(item_ids: np.ndarray, ids: np.ndarray, scores: np.ndarray, single: bool):
    """Item indices → raw ids; integer ids pad with -1 (unsigned ones widen to int64), strings with None."""
    out_dtype, raw_pad = {"i": (item_ids.dtype, -1), "u": (np.int64, -1)}.get(item_ids.dtype.kind, (object, None))
    valid = ids >= 0
    raw = np.empty(ids.shape, dtype=out_dtype)
    raw[valid] = item_ids[ids[valid]]
    raw[~valid] = raw_pad
    if single:
        keep = valid[0]
        return raw[0][keep], scores[0][keep]
    return raw, scores
