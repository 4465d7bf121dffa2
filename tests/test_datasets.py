"""Tests for recae.datasets: data-directory lookup, MovieLens loaders, download helpers, the named datasets.

Nothing here touches the network: downloads are exercised through ``file://`` URLs on
archives built in ``tmp_path``. Tests on the real MovieLens files skip when they are absent.
"""

from __future__ import annotations

import hashlib
import stat
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import require_data
from recae.data.interactions import Interactions
from recae.datasets import (
    DATA_ENV,
    DATASET_NAMES,
    REGISTRY,
    SYNTHETIC,
    candidate_dirs,
    describe_datasets,
    find_dataset_dir,
    load_csv,
    load_log,
    load_movielens,
    load_movielens_items,
    load_parquet,
    movielens_official_split,
    registry,
)
from recae.datasets.movielens import source as ml_source  # where the download URL is built
from recae.datasets.download import download_and_extract, parse_md5_file, safe_extract, verify_checksum
from recae.exceptions import DataError, DatasetNotFoundError

ML100K_STARS = [6110, 11370, 27145, 34174, 21201]
ML1M_STARS = [56174, 107557, 261197, 348971, 226310]

SMALL_CSV = "userId,movieId,rating,timestamp\n1,10,4.0,100\n1,20,3.5,200\n2,10,5.0,300\n"


def _entry(inter: Interactions, user, item):
    """(value, timestamp) stored for a raw (user, item) pair."""
    r = int(inter.user_index(user)[0])
    c = int(inter.item_index(item)[0])
    m = inter.matrix
    lo, hi = m.indptr[r], m.indptr[r + 1]
    hit = np.flatnonzero(m.indices[lo:hi] == c)
    assert hit.size == 1, f"no entry for user {user}, item {item}"
    p = lo + hit[0]
    return float(m.data[p]), float(inter.timestamps[p])


def _star_counts(inter: Interactions) -> list[int]:
    return [int((inter.matrix.data == s).sum()) for s in range(1, 6)]


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No $RECAE_DATA_DIR and a fresh working directory, so ./datasets is empty."""
    monkeypatch.delenv(DATA_ENV, raising=False)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return tmp_path


def _write_small(base: Path, folder: str = "ml-latest-small") -> Path:
    d = base / folder
    d.mkdir(parents=True, exist_ok=True)
    (d / "ratings.csv").write_text(SMALL_CSV)
    return d


def _zip(path: Path, members: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return path


# ----------------------------------------------------------------------------- paths
def test_candidate_dirs_explicit_argument_is_the_only_candidate(isolated, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(isolated / "env"))
    assert candidate_dirs(isolated / "explicit") == [isolated / "explicit"]


def test_candidate_dirs_env_then_local(isolated, monkeypatch):
    assert candidate_dirs() == [Path.cwd() / "datasets"]
    monkeypatch.setenv(DATA_ENV, str(isolated / "env"))
    assert candidate_dirs() == [isolated / "env", Path.cwd() / "datasets"]


def test_find_dataset_dir_first_complete_candidate(isolated, monkeypatch):
    env = isolated / "env"
    (env / "ml-x").mkdir(parents=True)
    (env / "ml-x" / "a.txt").write_text("a")  # b.txt missing: incomplete
    local = Path.cwd() / "datasets" / "ml-x"
    local.mkdir(parents=True)
    (local / "a.txt").write_text("a")
    (local / "b.txt").write_text("b")
    monkeypatch.setenv(DATA_ENV, str(env))
    assert find_dataset_dir("ml-x", ["a.txt"]) == env / "ml-x"
    assert find_dataset_dir("ml-x", ["a.txt", "b.txt"]) == local
    assert find_dataset_dir("ml-x", ["c.txt"]) is None
    assert find_dataset_dir("ml-x", ["a.txt", "b.txt"], data_dir=env) is None


# ----------------------------------------------------------------------------- real MovieLens
def test_ml100k_loads_with_official_counts(ml100k):
    assert ml100k.shape == (943, 1682)
    assert ml100k.nnz == 100_000
    assert ml100k.has_ratings
    assert _star_counts(ml100k) == ML100K_STARS
    np.testing.assert_array_equal(ml100k.user_ids, np.arange(1, 944))
    np.testing.assert_array_equal(ml100k.item_ids, np.arange(1, 1683))
    assert ml100k.timestamps is not None and ml100k.timestamps.shape == (100_000,)
    # first line of u.data: 196 242 3 881250949 (checks column order and timestamp alignment)
    assert _entry(ml100k, 196, 242) == (3.0, 881250949.0)
    assert _entry(ml100k, 186, 302) == (3.0, 891717742.0)
    assert np.diff(ml100k.matrix.indptr).min() >= 20


@pytest.mark.slow
def test_ml1m_loads_with_official_counts(data_dir):
    require_data("ml-1m", "ratings.dat")
    inter = load_movielens("1m", data_dir=data_dir, download=False)
    assert inter.shape == (6040, 3706)
    assert inter.nnz == 1_000_209
    assert _star_counts(inter) == ML1M_STARS
    assert inter.timestamps.min() == 956703932 and inter.timestamps.max() == 1046454590
    assert _entry(inter, 1, 1193) == (5.0, 978300760.0)
    assert _entry(inter, 1, 661) == (3.0, 978302109.0)


def test_ml100k_items_latin1_titles(data_dir):
    require_data("ml-100k", "u.item")
    items = load_movielens_items("100k", data_dir=data_dir, download=False)
    assert list(items.columns) == ["item", "title", "genres"]
    assert len(items) == 1682
    row = items.set_index("item").loc[543]
    assert row["title"] == "Misérables, Les (1995)"
    assert row["genres"] == "Drama|Musical"
    by_id = items.set_index("item")
    assert by_id.loc[1, "genres"] == "Animation|Children's|Comedy"
    assert by_id.loc[1104, "title"] == "C'est arrivé près de chez vous (1992)"


def test_ml1m_items_latin1_titles(data_dir):
    require_data("ml-1m", "movies.dat")
    items = load_movielens_items("1m", data_dir=data_dir, download=False).set_index("item")
    assert len(items) == 3883
    assert items.loc[73, "title"] == "Misérables, Les (1995)"
    assert items.loc[582, "title"] == "Metisse (Café au Lait) (1993)"
    assert items.loc[1, "genres"] == "Animation|Children's|Comedy"


def test_official_split_u1_keep_has_file_sizes(data_dir):
    require_data("ml-100k", "u1.base")
    train, test = movielens_official_split(1, data_dir=data_dir, download=False, unseen="keep")
    assert train.nnz == 80_000 and test.nnz == 20_000
    np.testing.assert_array_equal(train.user_ids, test.user_ids)
    np.testing.assert_array_equal(train.item_ids, test.item_ids)
    assert train.shape == test.shape == (943, 1682)
    overlap = train.matrix.multiply(test.matrix)
    assert overlap.nnz == 0
    # together they are exactly u.data
    assert (train.matrix + test.matrix).nnz == 100_000


def test_official_split_u1_drop_aligns_test_to_train(data_dir):
    path = require_data("ml-100k", "u1.test")
    base = pd.read_csv(path.with_name("u1.base"), sep="\t", header=None)
    raw_test = pd.read_csv(path, sep="\t", header=None)
    unseen = int((~raw_test[1].isin(base[1]) | ~raw_test[0].isin(base[0])).sum())
    assert unseen > 0  # u1.test has items that u1.base lacks
    train, test = movielens_official_split("u1", data_dir=data_dir, download=False)
    assert train.nnz == 80_000
    assert test.nnz == 20_000 - unseen
    np.testing.assert_array_equal(train.item_ids, test.item_ids)
    np.testing.assert_array_equal(train.user_ids, test.user_ids)
    assert train.n_items == base[1].nunique()
    # first line of u1.test: 1 6 5 887431973
    assert _entry(test, 1, 6) == (5.0, 887431973.0)


def test_official_split_ua_holds_out_ten_per_user(data_dir):
    require_data("ml-100k", "ua.test")
    train, test = movielens_official_split("ua", data_dir=data_dir, download=False, unseen="keep")
    assert set(np.diff(test.matrix.indptr).tolist()) == {10}
    assert train.nnz == 90_570


def test_official_split_rejects_unknown_fold():
    with pytest.raises(ValueError, match="u1"):
        movielens_official_split(6)


def test_env_var_lookup_finds_real_data(data_dir, isolated, monkeypatch):
    # data_dir (session scope) is resolved before `isolated` clears $RECAE_DATA_DIR
    if not (data_dir / "ml-100k" / "u.data").is_file():
        pytest.skip(f"real data not available: {data_dir / 'ml-100k' / 'u.data'} is missing")
    monkeypatch.setenv(DATA_ENV, str(data_dir))
    inter = load_movielens("100k", download=False)
    assert inter.nnz == 100_000


# ----------------------------------------------------------------------------- synthetic layouts
def test_env_var_lookup_with_local_files(isolated, monkeypatch):
    env = isolated / "env"
    _write_small(env)
    monkeypatch.setenv(DATA_ENV, str(env))
    inter = load_movielens("latest-small", download=False)
    assert inter.shape == (2, 2) and inter.nnz == 3
    assert _entry(inter, 1, 20) == (3.5, 200.0)


def test_local_datasets_folder_is_searched(isolated):
    _write_small(Path.cwd() / "datasets")
    inter = load_movielens("ml-latest-small", download=False)
    assert inter.nnz == 3


def test_missing_dataset_message_lists_dirs_and_url(isolated, monkeypatch):
    env = isolated / "env"
    monkeypatch.setenv(DATA_ENV, str(env))
    with pytest.raises(DatasetNotFoundError) as info:
        load_movielens("1m", download=False)
    msg = str(info.value)
    assert str(env / "ml-1m") in msg
    assert str(Path.cwd() / "datasets" / "ml-1m") in msg
    assert "ratings.dat" in msg
    assert "https://files.grouplens.org/datasets/movielens/ml-1m.zip" in msg
    assert DATA_ENV in msg and "data_dir" in msg and "download=True" in msg
    assert isinstance(info.value, FileNotFoundError)


def test_missing_dataset_with_explicit_dir(isolated):
    with pytest.raises(DatasetNotFoundError, match="ml-10M100K") as info:
        load_movielens("10m", data_dir=isolated / "nowhere", download=False)
    assert "https://files.grouplens.org/datasets/movielens/ml-10m.zip" in str(info.value)
    assert str(Path.cwd() / "datasets") not in str(info.value)


def test_truncated_file_is_rejected(isolated):
    d = isolated / "data" / "ml-100k"
    d.mkdir(parents=True)
    (d / "u.data").write_text("1\t2\t3\t4\n5\t6\t4\t8\n")
    with pytest.raises(DataError, match="100,000"):
        load_movielens("100k", data_dir=isolated / "data", download=False)


def test_file_cut_inside_its_last_line_is_rejected(isolated):
    """Every row is there, but the last timestamp is cut short: the missing final newline gives it away."""
    d = isolated / "data" / "ml-100k"
    d.mkdir(parents=True)
    rows = [f"{1 + i % 943}\t{1 + i // 943}\t{1 + i % 5}\t879959583" for i in range(100_000)]
    (d / "u.data").write_text("\n".join(rows)[:-4])
    with pytest.raises(DataError, match=r"u.data does not end with a newline, and its last timestamp is shorter "
                                        r"than the one before.*'timestamp': 87995\}\) is cut short"):
        load_movielens("100k", data_dir=isolated / "data", download=False)
    for whole in ("\n".join(rows) + "\n", "\n".join(rows)):  # a release without a final newline still loads
        (d / "u.data").write_text(whole)
        assert load_movielens("100k", data_dir=isolated / "data", download=False).nnz == 100_000


def test_a_data_dir_that_is_a_file_or_the_dataset_folder_is_named(isolated):
    folder = isolated / "data" / "ml-1m"
    folder.mkdir(parents=True)
    (folder / "ratings.dat").write_text("1::2::5::100\n")
    with pytest.raises(DatasetNotFoundError, match=r"ml-1m is the ml-1m folder itself: pass its parent, .*data, as the data"):
        load_movielens("1m", data_dir=folder, download=False)
    with pytest.raises(DatasetNotFoundError, match=r"ratings.dat is a file: a data directory is the folder that holds ml-1m/"):
        load_movielens("1m", data_dir=folder / "ratings.dat", download=False)


def test_malformed_colon_file_is_rejected(isolated):
    d = isolated / "data" / "ml-1m"
    d.mkdir(parents=True)
    (d / "ratings.dat").write_text("1::2::5::100\n1::3::x::200\n")
    with pytest.raises(DataError, match="ratings.dat"):
        load_movielens("1m", data_dir=isolated / "data", download=False)


def test_colon_movies_parser_keeps_colons_in_titles(isolated):
    d = isolated / "data" / "ml-10M100K"
    d.mkdir(parents=True)
    (d / "movies.dat").write_bytes("1::Star Wars: Episode IV (1977)::Action|Sci-Fi\n2::Caf\u00e9 (2000)::Drama\n".encode("utf-8"))
    items = load_movielens_items("10m", data_dir=isolated / "data", download=False)
    assert items["title"].tolist() == ["Star Wars: Episode IV (1977)", "Caf\u00e9 (2000)"]
    assert items["genres"].tolist() == ["Action|Sci-Fi", "Drama"]


def test_unknown_variant():
    with pytest.raises(ValueError, match="100k"):
        load_movielens("3m", download=False)


# ----------------------------------------------------------------------------- download (offline)
def test_verify_checksum_accepts_and_rejects(tmp_path):
    f = tmp_path / "f.bin"
    f.write_bytes(b"hello")
    good_sha = hashlib.sha256(b"hello").hexdigest()
    good_md5 = hashlib.md5(b"hello").hexdigest()
    verify_checksum(f, md5=good_md5, sha256=good_sha)
    bad = "0" * 64
    with pytest.raises(DataError) as info:
        verify_checksum(f, sha256=bad)
    assert bad in str(info.value) and good_sha in str(info.value)
    with pytest.raises(DataError, match=good_md5):
        verify_checksum(f, md5="1" * 32)


def test_parse_md5_file_formats():
    h = "0e33842e24a9c977be4e0107933c0723"
    assert parse_md5_file(f"MD5 (ml-100k.zip) = {h}\n") == h
    assert parse_md5_file(f"{h.upper()}  ml-100k.zip\n") == h
    with pytest.raises(DataError):
        parse_md5_file("<html>not found</html>")


@pytest.mark.parametrize("member", ["../evil.txt", "a/../../evil.txt", "/abs/evil.txt"])
def test_safe_extract_refuses_escaping_paths(tmp_path, member):
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ok/first.txt", "fine")
        zf.writestr(zipfile.ZipInfo(member), "pwned")
    dest = tmp_path / "dest"
    with pytest.raises(DataError, match="refusing"):
        safe_extract(archive, dest)
    assert not (tmp_path / "evil.txt").exists()
    assert not (dest / "ok" / "first.txt").exists()  # nothing written before the check


def test_safe_extract_refuses_symlinks(tmp_path):
    archive = tmp_path / "link.zip"
    info = zipfile.ZipInfo("ml/link")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(DataError, match="symbolic link"):
        safe_extract(archive, tmp_path / "dest")


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_safe_extract_names_a_damaged_member(tmp_path, compression):
    """A flipped byte inside a member (its header intact): a bad CRC or a failed inflate, not a raw traceback."""
    archive = tmp_path / "a.zip"
    payload = bytes(np.random.default_rng(0).integers(0, 256, 20_000, dtype=np.uint8))
    with zipfile.ZipFile(archive, "w", compression=compression) as zf:
        zf.writestr("ml-100k/u.data", payload)
    raw = bytearray(archive.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # inside the member's data, far from the headers at both ends
    archive.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"a.zip' is damaged: ml-100k/u.data does not extract \((BadZipFile|error)"):
        safe_extract(archive, tmp_path / "dest")
    assert not (tmp_path / "dest" / "ml-100k" / "u.data").exists()


def test_safe_extract_nested_files(tmp_path):
    archive = _zip(tmp_path / "ok.zip", {"ml-x/a.txt": "A", "ml-x/sub/b.txt": "B"})
    out = safe_extract(archive, tmp_path / "dest")
    assert (tmp_path / "dest" / "ml-x" / "sub" / "b.txt").read_text() == "B"
    assert len(out) == 2
    assert [p.name for p in (tmp_path / "dest").iterdir()] == ["ml-x"]  # staging folder removed


def test_download_and_extract_file_url_with_published_md5(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    archive = _zip(src / "pkg.zip", {"pkg/data.txt": "payload"})
    digest = hashlib.md5(archive.read_bytes()).hexdigest()
    (src / "pkg.zip.md5").write_text(f"MD5 (pkg.zip) = {digest}\n")
    dest = tmp_path / "dest"
    download_and_extract(archive.as_uri(), dest, show_progress=False)
    assert (dest / "pkg" / "data.txt").read_text() == "payload"
    assert not (dest / "pkg.zip").exists()


def test_download_and_extract_rejects_bad_md5_and_cleans_up(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    archive = _zip(src / "pkg.zip", {"pkg/data.txt": "payload"})
    (src / "pkg.zip.md5").write_text("MD5 (pkg.zip) = " + "a" * 32 + "\n")
    dest = tmp_path / "dest"
    with pytest.raises(DataError, match="a" * 32):
        download_and_extract(archive.as_uri(), dest, show_progress=False)
    assert not (dest / "pkg").exists()
    assert list(dest.iterdir()) == []  # neither the archive nor a .part file is left


def test_download_and_extract_explicit_sha256(tmp_path):
    archive = _zip(tmp_path / "pkg.zip", {"pkg/data.txt": "payload"})
    good = hashlib.sha256(archive.read_bytes()).hexdigest()
    download_and_extract(archive.as_uri(), tmp_path / "d1", sha256=good, show_progress=False, keep_archive=True)
    assert (tmp_path / "d1" / "pkg.zip").exists()
    with pytest.raises(DataError, match=good):
        download_and_extract(archive.as_uri(), tmp_path / "d2", sha256="b" * 64, show_progress=False)


def test_load_movielens_downloads_into_first_candidate(isolated, monkeypatch):
    """The download branch end to end, against a file:// mirror of the GroupLens layout."""
    mirror = isolated / "mirror"
    mirror.mkdir()
    archive = _zip(mirror / "ml-latest-small.zip", {"ml-latest-small/ratings.csv": SMALL_CSV})
    (mirror / "ml-latest-small.zip.md5").write_text(
        f"MD5 (ml-latest-small.zip) = {hashlib.md5(archive.read_bytes()).hexdigest()}\n")
    monkeypatch.setattr(ml_source, "BASE_URL", mirror.as_uri())
    env = isolated / "env"
    monkeypatch.setenv(DATA_ENV, str(env))
    inter = load_movielens("latest-small", download=True, show_progress=False)
    assert inter.nnz == 3
    assert (env / "ml-latest-small" / "ratings.csv").is_file()
    assert not (Path.cwd() / "datasets").exists()


def test_load_movielens_download_checksum_mismatch_raises(isolated, monkeypatch):
    mirror = isolated / "mirror"
    mirror.mkdir()
    _zip(mirror / "ml-latest-small.zip", {"ml-latest-small/ratings.csv": SMALL_CSV})
    (mirror / "ml-latest-small.zip.md5").write_text("MD5 (ml-latest-small.zip) = " + "c" * 32)
    monkeypatch.setattr(ml_source, "BASE_URL", mirror.as_uri())
    with pytest.raises(DataError, match="checksum mismatch"):
        load_movielens("latest-small", data_dir=isolated / "data", show_progress=False)
    assert not (isolated / "data" / "ml-latest-small").exists()


def test_load_movielens_failed_download_is_not_found(isolated, monkeypatch):
    monkeypatch.setattr(ml_source, "BASE_URL", (isolated / "no-mirror").as_uri())
    with pytest.raises(DatasetNotFoundError, match="Download failed"):
        load_movielens("latest-small", data_dir=isolated / "data", show_progress=False)


def test_local_archive_is_extracted(isolated):
    data = isolated / "data"
    data.mkdir()
    _zip(data / "ml-latest-small.zip", {"ml-latest-small/ratings.csv": SMALL_CSV})
    inter = load_movielens("latest-small", data_dir=data, download=False)
    assert inter.nnz == 3


# ----------------------------------------------------------------------------- generic files
def test_load_csv_and_parquet(tmp_path):
    df = pd.DataFrame({"u": ["a", "b", "a"], "i": [1, 2, 2], "r": [1.0, 2.0, 3.0]})
    df.to_csv(tmp_path / "log.csv", index=False)
    a = load_csv(tmp_path / "log.csv", user="u", item="i", rating="r")
    assert a.shape == (2, 2) and a.nnz == 3 and a.has_ratings
    pytest.importorskip("pyarrow")
    df.to_parquet(tmp_path / "log.parquet")
    b = load_parquet(tmp_path / "log.parquet", user="u", item="i", rating="r")
    assert (a.matrix != b.matrix).nnz == 0
    np.testing.assert_array_equal(a.user_ids, b.user_ids)


def test_load_log_picks_the_reader_and_separator_from_the_suffix(tmp_path):
    df = pd.DataFrame({"user": ["a", "b", "a"], "item": [1, 2, 2], "rating": [5.0, 4.0, 3.0]})
    df.to_csv(tmp_path / "log.tsv", sep="\t", index=False)
    df.to_csv(tmp_path / "log.txt", sep=";", index=False)
    tsv = load_log(tmp_path / "log.tsv", rating="rating")
    assert tsv.shape == (2, 2) and tsv.nnz == 3 and tsv.has_ratings
    txt = load_log(tmp_path / "log.txt", sep=";", rating="rating")
    assert (txt.matrix != tsv.matrix).nnz == 0
    pytest.importorskip("pyarrow")
    for name in ("log.parquet", "log.pq"):
        df.to_parquet(tmp_path / name)
        assert (load_log(tmp_path / name, sep="ignored", rating="rating").matrix != tsv.matrix).nnz == 0


# ----------------------------------------------------------------------------- the named datasets
def test_every_named_dataset_has_one_loader_description_and_summary():
    assert DATASET_NAMES == tuple(REGISTRY) == ("ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m", "synthetic",
                                                "synthetic-ml20m", "synthetic-longtail")
    listing = describe_datasets()
    markdown = describe_datasets(markdown=True)
    for name, spec in REGISTRY.items():
        assert spec.name == name and spec.description and spec.summary and callable(spec.load)
        assert name in listing and f"`{name}`" in markdown


def test_synthetic_means_one_log():
    data, what = registry.load("synthetic")
    assert what == "synthetic log (seeded)"
    assert data.shape == (SYNTHETIC["n_users"], SYNTHETIC["n_items"]) == (2000, 1000)
    assert data.nnz == 40_000 and data.has_ratings and data.timestamps is not None
    again, _ = registry.load("synthetic")
    assert (again.matrix != data.matrix).nnz == 0
    other, _ = registry.load("synthetic", random_state=1)
    assert (other.matrix != data.matrix).nnz > 0


def test_registry_loads_movielens_by_name(data_dir):
    require_data("ml-100k", "u.data")
    data, what = registry.load("ml-100k", data_dir=data_dir)
    assert what == "MovieLens 100K" and data.shape == (943, 1682) and data.nnz == 100_000


def test_registry_reads_other_names_as_log_paths(tmp_path):
    (tmp_path / "log.csv").write_text(SMALL_CSV)
    data, what = registry.load(str(tmp_path / "log.csv"), user="userId", item="movieId", rating="rating")
    assert what == str(tmp_path / "log.csv") and data.nnz == 3
    with pytest.raises(DataError, match="no such file"):
        registry.load(str(tmp_path / "absent.csv"))
    with pytest.raises(DataError, match=r"unknown dataset 'ml-1k'.*'ml-100k'"):
        registry.load("ml-1k")
    with pytest.raises(DataError, match=r"unknown dataset 'ml100k'.*; did you mean 'ml-100k'\?"):
        registry.load("ml100k")


# ----------------------------------------------------------------------------- modified releases
def _copy_100k(base: Path, edit=None, files=("u.data",)) -> Path:
    import shutil

    source = require_data("ml-100k", "u.data").parent
    folder = base / "ml-100k"
    folder.mkdir(parents=True)
    for name in files:
        shutil.copy(source / name, folder / name)
    if edit is not None:
        edit(folder)
    return base


def _edit_line(name: str, number: int, change):
    def edit(folder: Path):
        lines = (folder / name).read_text(encoding="latin-1").split("\n")
        lines[number - 1] = change(lines[number - 1])
        (folder / name).write_text("\n".join(lines), encoding="latin-1")
    return edit


@pytest.mark.parametrize("change, message", [
    (lambda line: "\t".join(line.split("\t")[:2] + ["9"] + line.split("\t")[3:]), r"ratings outside \[1, 2, 3, 4, 5\]"),
    (lambda line: "0\t" + line.split("\t", 1)[1], "user or movie ids below 1"),
])
def test_a_modified_u_data_of_the_right_length_is_refused(isolated, change, message):
    base = _copy_100k(isolated / "data", _edit_line("u.data", 7, change))
    with pytest.raises(DataError, match=f"{message} .1, first in data row 7"):
        load_movielens("100k", data_dir=base, download=False)


def test_a_blank_genre_flag_is_refused_not_read_as_set(isolated):
    base = _copy_100k(isolated / "data", _edit_line("u.item", 5, lambda line: "|".join(
        f if i != 6 else "" for i, f in enumerate(line.split("|")))), files=("u.data", "u.item"))
    with pytest.raises(DataError, match="u.item, line 5: the 19 genre flags must each be 0 or 1"):
        load_movielens_items("100k", data_dir=base, download=False)


def test_a_truncated_official_split_file_is_refused(isolated):
    base = _copy_100k(isolated / "data", files=("u1.base", "u1.test"))
    lines = (base / "ml-100k" / "u1.test").read_text().splitlines()[:5000]
    (base / "ml-100k" / "u1.test").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="u1.test has 5,000 ratings; the official release has 20,000"):
        movielens_official_split(1, data_dir=base, download=False)


def test_a_local_archive_without_the_release_is_not_unpacked(isolated):
    data = isolated / "data"
    data.mkdir()
    _zip(data / "ml-100k.zip", {"other/readme.txt": "hello"})
    with pytest.raises(DataError, match="does not hold ml-100k/u.data, so it is not the official MovieLens 100K"):
        load_movielens("100k", data_dir=data, download=False)
    assert sorted(p.name for p in data.iterdir()) == ["ml-100k.zip"]  # nothing unpacked beside it


def test_a_header_naming_a_column_twice_is_refused(tmp_path):
    (tmp_path / "log.csv").write_text("user,item,user\n1,2,3\n4,5,6\n")
    with pytest.raises(DataError, match=r"names the column\(s\) \['user'\] more than once"):
        load_log(tmp_path / "log.csv")


def test_a_missing_compressed_log_is_a_missing_file_not_an_unknown_dataset(tmp_path):
    with pytest.raises(DataError, match="no such file: .*ratings.csv.gz"):
        registry.load(str(tmp_path / "ratings.csv.gz"))
