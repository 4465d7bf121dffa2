"""`recae serve` over real HTTP: every endpoint agrees with the library, bad requests answer 4xx."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 'recae[serve]'")
pytest.importorskip("httpx", reason="httpx is not installed: pip install 'recae[test]'")

from test_serve_common import TOKEN, Server, admin, small_data  # noqa: E402

from recae.models import EASE  # noqa: E402
from recae.serve.state import ModelState  # noqa: E402


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve")
    model = EASE(l2=200.0, device="cpu").fit(small_data())
    model.save(folder / "m.recae")
    server = Server(folder / "m.recae", "--journal", str(folder / "j.sqlite"))
    yield model, server
    server.stop()


def get(server, path, **params):
    r = server.http.get(path, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def post(server, path, body):
    r = server.http.post(path, json=body)
    assert r.status_code == 200, r.text
    return r.json()


def same_ranking(got: dict, ids, scores):
    assert got["items"] == ids.tolist()
    np.testing.assert_allclose(got["scores"], scores, rtol=1e-5, atol=1e-6)


def test_health_model_and_fingerprint(served):
    model, server = served
    assert get(server, "/health") == {"status": "ok", "model": "EASE", "generation": 0}
    probe = server.http.head("/health")  # uptime checkers probe with HEAD: headers, no body
    assert probe.status_code == 200 and probe.content == b""
    info = get(server, "/model")
    assert info["class"] == "EASE" and info["params"]["l2"] == 200.0
    assert (info["n_users"], info["n_items"], info["n_interactions"]) == (len(model.user_ids_), model.n_items_,
                                                                          model.user_items_.nnz)
    assert info["training_fingerprint"] == ModelState(model, {}, None, 0).fingerprint()
    assert info["explanations"] == "exact" and info["quality"] is None and len(info["file"]["sha256"]) == 64


def test_recommend_matches_the_library(served):
    model, server = served
    user = int(model.user_ids_[5])
    same_ranking(get(server, "/recommend", user=user, n=10), *model.recommend(user, n=10))
    ex = [int(x) for x in model.recommend(user, n=3)[0]]
    got = get(server, "/recommend", user=user, n=10, exclude=",".join(map(str, ex[:2])))  # comma form
    same_ranking(got, *model.recommend(user, n=10, exclude=ex[:2]))
    cands = [int(x) for x in model.item_ids_[:30]]
    r = server.http.get("/recommend", params=[("user", user), ("n", 5)] + [("items", c) for c in cands])  # repeated
    same_ranking(r.json(), *model.recommend(user, n=5, items=cands))


def test_batch_recommend_one_object_per_user(served):
    model, server = served
    users = [int(u) for u in model.user_ids_[[0, 3, 9]]]
    got = post(server, "/recommend", {"users": users, "n": 4})["results"]
    ids, scores = model.recommend(users, n=4)
    assert [g["user"] for g in got] == users
    for g, i, s in zip(got, ids, scores):
        same_ranking(g, i, s)


def test_recommend_new_list_and_ratings(served):
    model, server = served
    hist = [int(x) for x in model.item_ids_[[1, 5, 8]]]
    same_ranking(post(server, "/recommend_new", {"history": hist, "n": 6}), *model.recommend_new(hist, n=6))
    rated = {str(hist[0]): 5.0, str(hist[1]): 2.0}
    same_ranking(post(server, "/recommend_new", {"history": rated, "n": 6}),
                 *model.recommend_new({hist[0]: 5.0, hist[1]: 2.0}, n=6))
    got = post(server, "/recommend_new", {"history": hist + [99999999], "n": 3, "unknown": "ignore"})
    assert got["items"] == model.recommend_new(hist, n=3)[0].tolist()
    assert got["ignored"] == [99999999] and "fallback" not in got
    assert "ignored" not in post(server, "/recommend_new", {"history": hist, "n": 3})


def test_recommend_new_says_when_nothing_was_folded_in(served):
    model, server = served
    popular = model.item_ids_[np.argsort(-model.item_counts(), kind="stable")[:4]].tolist()
    got = post(server, "/recommend_new", {"history": [99999998, 99999999], "n": 4, "unknown": "ignore"})
    assert got["ignored"] == [99999998, 99999999] and got["fallback"] == "popularity"
    assert got["items"] == popular
    empty = post(server, "/recommend_new", {"history": [], "n": 4})
    assert empty["fallback"] == "popularity" and empty["items"] == popular and "ignored" not in empty
    # a zero holds no interaction for a model of positives: popularity too, the item itself left out
    zero = post(server, "/recommend_new", {"history": {str(popular[0]): 0}, "n": 3})
    assert zero["fallback"] == "popularity" and zero["items"] == popular[1:4]
    assert zero["items"] == model.recommend_new({popular[0]: 0.0}, n=3)[0].tolist()
    assert "fallback" not in post(server, "/recommend_new", {"history": {str(popular[0]): 0, str(popular[1]): 1}})


def test_similar(served):
    model, server = served
    item = int(model.item_ids_[2])
    got = get(server, "/similar", item=item, n=5)
    assert got["item"] == item and item not in got["items"]
    same_ranking(got, *model.similar_items(item, n=5))


def test_explanations_add_up_for_ease(served):
    model, server = served
    user = int(model.user_ids_[11])
    got = get(server, "/recommend", user=user, n=5, explain="true")
    assert [e["item"] for e in got["explanations"]] == got["items"]
    history = set(model.item_ids_[model.user_items_[11].indices].tolist())
    for e, s in zip(got["explanations"], got["scores"]):
        assert e["method"] == "exact" and e["score"] == pytest.approx(s, rel=1e-5)
        assert {c["item"] for c in e["contributions"]} <= history and len(e["contributions"]) <= 5
    full = model.explain(user, got["items"][:1], n=10_000)[0]
    assert sum(c["contribution"] for c in full["contributions"]) == pytest.approx(got["scores"][0], rel=1e-4)
    new = post(server, "/recommend_new", {"history": sorted(history)[:3], "n": 2, "explain": True})
    assert len(new["explanations"]) == 2
    empty = post(server, "/recommend_new", {"history": [], "n": 2, "explain": True})  # ranked by popularity
    assert [e["method"] for e in empty["explanations"]] == ["popularity"] * 2
    assert [e["score"] for e in empty["explanations"]] == pytest.approx(empty["scores"])


def test_interactions_fold_in_at_once(served):
    model, server = served
    new_user = 10**9
    assert server.http.get("/recommend", params={"user": new_user}).status_code == 404
    items = [int(x) for x in model.item_ids_[[4, 7, 20]]]
    ack = post(server, "/interactions", {"user": new_user, "items": items})
    assert ack["new_user"] and ack["appended"] == 3 and ack["history_size"] == 3 and ack["seq"] >= 1
    same_ranking(get(server, "/recommend", user=new_user, n=8), *model.recommend_new(items, n=8))
    assert get(server, "/history", user=new_user)["items"] == sorted(items)
    # a known user: the training row plus the new events, which are no longer recommended
    row = 2
    user = int(model.user_ids_[row])
    before = get(server, "/recommend", user=user, n=3)["items"]
    post(server, "/interactions", {"user": user, "items": before[:2], "ratings": [1.0, 1.0]})
    hist = dict(zip(model.item_ids_[model.user_items_[row].indices].tolist(), model.user_items_[row].data.tolist()))
    hist.update({before[0]: 1.0, before[1]: 1.0})
    got = get(server, "/recommend", user=user, n=5)
    same_ranking(got, *model.recommend_new(hist, n=5))
    assert not set(before[:2]) & set(got["items"])
    batch = post(server, "/recommend", {"users": [user, new_user, int(model.user_ids_[0])], "n": 5})["results"]
    assert batch[0]["items"] == got["items"] and batch[1]["items"] == model.recommend_new(items, n=5)[0].tolist()


def test_items_explorer_openapi_and_metrics(served):
    model, server = served
    pop = get(server, "/items", n=5)
    counts = np.bincount(model.user_items_.indices, minlength=model.n_items_)
    assert pop["counts"] == sorted(counts.tolist(), reverse=True)[:5]
    page = server.http.get("/")
    assert page.status_code == 200 and 'id="results"' in page.text
    assert "http://" not in page.text and "https://" not in page.text and "<script src" not in page.text  # no CDN
    spec = server.http.get("/openapi.json").json()
    for path in ("/recommend", "/recommend_new", "/similar", "/interactions", "/health", "/model", "/metrics",
                 "/admin/reload"):
        assert path in spec["paths"], path
        assert all(op.get("summary") for op in spec["paths"][path].values())
    text = server.http.get("/metrics").text
    assert '# TYPE recae_requests_total counter' in text
    assert 'recae_requests_total{route="/recommend",method="GET",status="200"}' in text
    assert 'recae_request_seconds_count{route="/recommend"}' in text and "recae_interactions_appended_total" in text


BIG = 2 * (1 << 20)
BAD = [
    ("GET", "/recommend?user=999999", None, 404, "999999"),
    ("GET", "/recommend?user=abc", None, 422, "user id must be an integer"),
    ("GET", "/recommend?user=1&n=0", None, 422, "query parameter n"),
    ("GET", "/recommend?user=1&n=-3", None, 422, "query parameter n"),
    ("GET", "/recommend?user=1&n=many", None, 422, "query parameter n"),
    ("GET", "/recommend?user=1&n=100000", None, 422, "less than or equal to 1000"),
    ("GET", "/recommend", None, 422, "query parameter user: Field required"),
    ("GET", "/recommend?user=1&exclude=888888", None, 404, "888888"),
    ("GET", "/recommend?user=1&explain=maybe", None, 422, "explain"),
    ("GET", "/similar?item=777777", None, 404, "777777"),
    ("GET", "/history?user=999999", None, 404, "999999"),
    ("GET", "/nope", None, 404, "no endpoint '/nope'"),
    ("DELETE", "/recommend", None, 405, "DELETE is not allowed on /recommend; allowed: GET, POST"),
    ("GET", "/recommend?user=1&exlude=50", None, 422, "unknown query parameter(s) ['exlude'] for GET /recommend"),
    ("POST", "/recommend?n=3", {"users": [1]}, 422, "unknown query parameter(s) ['n'] for POST /recommend"),
    ("POST", "/recommend", {"users": ["q" * 5000]}, 422, "… (cut; "),
    ("GET", "/recommend?user=1&user=2", None, 422, "query parameter user is given 2 times"),
    ("POST", "/recommend", b'"{\\"users\\": [1]}"', 400, "JSON-encoded twice"),
    ("POST", "/recommend", b'{"users": [1], "x": "\xff"}', 400, "send UTF-8 JSON text"),
    ("POST", "/interactions", {"user": 1, "items": [1], "ratings": [1e308]}, 422, "at most 3.4e+38"),
    ("POST", "/interactions", {"user": 1, "items": [1], "ratings": ["5"]}, 422, "ratings.0: Input should be a valid number"),
    ("POST", "/interactions", {"user": 1, "items": [1], "ratings": [True]}, 422, "ratings.0: Input should be a valid number"),
    ("POST", "/recommend", b'{"users": [1], "n": 2', 400, "not valid JSON"),
    ("POST", "/recommend", b"", 422, "body: Field required"),
    ("POST", "/recommend", {"users": "x"}, 422, "body users: Input should be a valid list"),
    ("POST", "/recommend", {"users": []}, 422, "at least 1 item"),
    ("POST", "/recommend", {"users": [1], "n": 0}, 422, "body n"),
    ("POST", "/recommend", {"users": [1], "n": "5"}, 422, "body n: Input should be a valid integer"),
    ("POST", "/recommend", {"users": [1], "n": True}, 422, "body n"),
    ("POST", "/recommend", {"users": [1.5]}, 422, "users"),
    ("POST", "/recommend", {"users": [1], "bogus": 1}, 422, "bogus"),
    ("POST", "/recommend", {"users": [1, 999999]}, 404, "999999"),
    ("POST", "/recommend", [1, 2], 422, "valid dictionary"),
    ("POST", "/recommend_new", {"history": [999999]}, 404, "999999"),
    ("POST", "/recommend_new", {"history": {"50": "x"}}, 422, "history"),
    ("POST", "/recommend_new", {"history": 5}, 422, "history"),
    ("POST", "/recommend_new", {"history": [1], "unknown": "skip"}, 422, "unknown"),
    ("POST", "/recommend_new", b'{"history": {"1": NaN}}', 422, "finite"),
    ("POST", "/interactions", {"user": 1, "items": []}, 422, "at least 1 item"),
    ("POST", "/interactions", {"user": 1, "items": [999999]}, 404, "999999"),
    ("POST", "/interactions", {"user": 1, "items": [1], "ratings": [1, 2]}, 422, "one number per item"),
    ("POST", "/interactions", {"user": 1, "items": [1], "ratings": [-1]}, 422, "ratings >= 0"),
    ("POST", "/interactions", {"user": 1.5, "items": [1]}, 422, "user"),
    ("POST", "/interactions", {"user": "someone", "items": [1]}, 422, "user id must be an integer"),
    ("POST", "/interactions", {"items": [1]}, 422, "body user: Field required"),
    ("POST", "/recommend", b"x" * BIG, 413, "over the 1048576-byte limit"),
    ("POST", "/admin/reload", None, 401, "admin token"),
]


@pytest.mark.parametrize("method,path,body,status,message", BAD, ids=[f"{b[0]} {b[1][:30]} {b[3]}" for b in BAD])
def test_bad_requests_answer_4xx_with_a_clear_message(served, method, path, body, status, message):
    _, server = served
    if isinstance(body, (bytes, type(None))):
        r = server.http.request(method, path, content=body, headers={"Content-Type": "application/json"})
    else:
        r = server.http.request(method, path, json=body)
    assert r.status_code == status, r.text
    payload = r.json()
    assert payload["status"] == status and message in payload["error"], payload
    assert "Traceback" not in r.text and 'File "' not in r.text


@pytest.mark.parametrize("headers", [{"Content-Type": "application/x-www-form-urlencoded"}, {}])
def test_a_json_body_without_its_content_type_gets_a_400_that_says_so(served, headers):
    _, server = served  # what curl -d sends
    r = server.http.request("POST", "/recommend", content=b'{"users": [1], "n": 2}', headers=headers)
    assert r.status_code == 400, r.text
    assert "Content-Type: application/json" in r.json()["error"] and "b'" not in r.text


def test_streamed_oversized_body_and_wrong_token(served):
    _, server = served

    def chunks():  # no Content-Length: the limit must hold for a streamed body too
        for _ in range(40):
            yield b"[" * 65536

    r = server.http.post("/recommend", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "streamed" in r.json()["error"]
    r = server.http.post("/admin/reload", headers=admin("wrong"))
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
    r = server.http.delete("/health")
    assert r.status_code == 405 and r.headers["Allow"] == "GET, HEAD"
    r = server.http.delete("/recommend")
    assert r.status_code == 405 and r.headers["Allow"] == "GET, POST"  # both routes on the path, not the first's
    r = server.http.post("/admin/reload", headers={"Authorization": "bearer wrong"})
    assert r.status_code == 401
    assert server.http.post("/admin/reload", headers={"Authorization": f"bearer {TOKEN}"}).status_code == 200
    r = server.http.post("/admin/reload", json={"path": " "}, headers=admin(TOKEN))  # not "the current file"
    assert r.status_code == 422 and "path must name a model file, or be left out" in r.json()["error"]
    text = server.http.get("/metrics").text
    assert 'status="500"' not in text  # nothing above answered a server error
    assert get(server, "/health")["status"] == "ok"


def test_a_refused_append_is_not_journalled(served):
    _, server = served
    r = server.http.post("/interactions", json={"user": 424242, "items": [1], "ratings": [3.5e38]})
    assert r.status_code == 422 and "at most 3.4e+38" in r.json()["error"]
    assert server.http.get("/history", params={"user": 424242}).status_code == 404  # nothing was kept for them
    records = server.http.get("/model").json()["live"]["journal_records"]
    appended = post(server, "/interactions", {"user": 424243, "items": [1, 2], "ratings": [0, 0]})
    assert appended["seq"] == records + 1
    ranked = get(server, "/recommend", user=424243, n=3)
    assert ranked["fallback"] == "popularity"  # only zeros: nothing personal to rank by, as /recommend_new says
