"""Saving and loading encoders and indexes: plain files, no pickle, atomic, checked."""

import copy
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from sklearn.frozen import FrozenEstimator

from skhash import PCAITQ, BinaryHashEncoder, SimHash
from skhash._index import HashIndex
from skhash._inference import forward
from skhash._persistence import FORMAT_VERSION, load_encoder, save_encoder
from tests.helpers import FAST

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def X():
    rng = np.random.default_rng(0)
    return (rng.standard_normal((8, 10))[rng.integers(0, 8, 200)] * 3).astype(
        np.float32
    ) + rng.standard_normal((200, 10)).astype(np.float32)


@pytest.fixture(scope="module")
def encoder(X):
    return BinaryHashEncoder(random_state=0, **FAST).fit(X)


@pytest.fixture(scope="module")
def Q():
    return np.random.default_rng(1).standard_normal((30, 10)).astype(np.float32)


def fit_index(X, encoder, **kw):
    ids = np.arange(len(X)) * 5 + 2
    return HashIndex(encoder=FrozenEstimator(encoder), **kw).fit(X, ids=ids)


@pytest.fixture
def saved(tmp_path, X, encoder):
    index = fit_index(X, encoder)
    path = tmp_path / "index"
    index.save(path)
    return index, path


def assert_same_answers(a, b, Q):
    for x, y in zip(a.kneighbors(Q, 7), b.kneighbors(Q, 7), strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize(
    "rescore, asymmetric",
    [("float16", False), ("float32", False), ("int8", False), (None, False), (None, True)],
)
def test_round_trip_gives_bit_identical_answers(tmp_path, X, encoder, Q, rescore, asymmetric):
    index = fit_index(X, encoder, rescore=rescore, n_candidates=3, asymmetric=asymmetric)
    index.save(tmp_path / "ix")
    loaded = HashIndex.load(tmp_path / "ix", verify=True)
    assert_same_answers(index, loaded, Q)
    np.testing.assert_array_equal(loaded.ids_, index.ids_)
    np.testing.assert_array_equal(loaded.codes_, index.codes_)
    assert loaded.get_params()["rescore"] == rescore and loaded.n_candidates == 3
    assert loaded.asymmetric is asymmetric
    assert loaded.vector_scale_ == index.vector_scale_
    if rescore is not None:
        assert isinstance(loaded.vectors_, np.memmap) and not loaded.vectors_.flags.writeable
        np.testing.assert_array_equal(loaded.vectors_, index.vectors_)
        assert not isinstance(HashIndex.load(tmp_path / "ix", mmap=False).vectors_, np.memmap)


def test_prefix_index_round_trip(tmp_path, X, encoder, Q):
    index = fit_index(X, encoder, prefix_bits=16, n_candidates=3)
    index.save(tmp_path / "ix")
    loaded = HashIndex.load(tmp_path / "ix", verify=True)
    assert loaded.prefix_bits == 16 and loaded.n_bits_ == 16 and loaded.codes_.shape[1] == 2
    assert_same_answers(index, loaded, Q)
    loaded.add(Q, ids=np.arange(len(Q)) + 10_000)  # new rows cut to the same 16 bits
    assert loaded.codes_.shape == (len(X) + len(Q), 2)


def test_index_saved_before_prefix_bits_loads_with_the_default(saved, Q):
    index, path = saved
    edit_manifest(path, lambda m: m["params"].pop("prefix_bits"))
    loaded = HashIndex.load(path)
    assert loaded.prefix_bits is None
    assert_same_answers(index, loaded, Q)


def test_manifest_fields(saved):
    index, path = saved
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["format_version"] == FORMAT_VERSION and manifest["n_bits"] == 16
    assert "packbits" in manifest["bit_order"] and manifest["n_items"] == len(index)
    names = {"ids.npy", "codes.npy", "vectors.npy", "encoder/manifest.json"}
    assert names <= set(manifest["files"])
    for name, entry in manifest["files"].items():
        assert entry["size"] == (path / name).stat().st_size and len(entry["sha256"]) == 64


def test_bit_order_is_packbits_msb_first(saved, encoder, X):
    index, _ = saved
    bits = np.unpackbits(index.codes_, axis=1)[:, :16]
    Z = forward(
        encoder.module_state_ if hasattr(encoder, "module_state_") else index._network_state, X
    )
    row = np.argsort(np.arange(len(X)) * 5 + 2)
    np.testing.assert_array_equal(bits, (Z[row] > 0).astype(np.uint8))


def test_encoder_round_trip(tmp_path, encoder, X):
    save_encoder(encoder, tmp_path / "enc")
    loaded = load_encoder(tmp_path / "enc", verify=True)
    assert not hasattr(loaded, "net_") and not hasattr(loaded, "history_")
    assert loaded.n_features_in_ == X.shape[1] and loaded.get_params() == encoder.get_params()
    assert loaded.teacher_temperature_ == encoder.teacher_temperature_
    index = HashIndex(encoder=FrozenEstimator(loaded)).fit(X)
    ref = HashIndex(encoder=FrozenEstimator(encoder)).fit(X)
    np.testing.assert_array_equal(index.codes_, ref.codes_)


def test_weights_as_npy_without_safetensors(tmp_path, encoder, X, Q, monkeypatch):
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)  # import fails
    index = fit_index(X, encoder)
    index.save(tmp_path / "ix")
    assert (tmp_path / "ix" / "encoder" / "weights").is_dir()
    assert_same_answers(index, HashIndex.load(tmp_path / "ix", verify=True), Q)


def test_save_over_the_loaded_directory_is_atomic(saved, Q, X):
    index, path = saved
    loaded = HashIndex.load(path)
    want = loaded.kneighbors(Q, 5)
    loaded.add(X[:5] + 0.5)
    loaded.save(path)  # replaces the directory its vectors are mapped from
    again = HashIndex.load(path, verify=True)
    assert len(again) == len(index) + 5
    loaded.remove(loaded.ids_[-5:])
    np.testing.assert_array_equal(loaded.kneighbors(Q, 5)[1], want[1])
    assert sorted(os.listdir(path.parent)) == ["index"]  # no temporary or old directory left


def test_add_after_load_never_writes_the_mapped_files(saved, X):
    _, path = saved
    before = {p: (path / p).read_bytes() for p in ("vectors.npy", "codes.npy", "ids.npy")}
    loaded = HashIndex.load(path)
    loaded.add(X[:4] * 2, ids=[1, 3, 4, 6]).remove([2, 6])
    assert not isinstance(loaded.vectors_, np.memmap)
    for p, data in before.items():
        assert (path / p).read_bytes() == data


def test_failed_save_leaves_the_old_directory(saved, monkeypatch):
    import skhash._persistence as module

    index, path = saved
    before = {p.name: p.read_bytes() for p in path.iterdir() if p.is_file()}

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(module, "_save_npy", broken)
    with pytest.raises(OSError, match="disk full"):
        index.save(path)
    assert {p.name: p.read_bytes() for p in path.iterdir() if p.is_file()} == before
    assert sorted(os.listdir(path.parent)) == ["index"]


def test_save_through_a_symlink_replaces_its_target_and_keeps_the_link(saved, encoder, X):
    # e.g. models/current -> v1: the link is followed (as writing a file through one
    # is), v1 is replaced atomically, and neither a stray ".old" entry nor a real
    # directory in place of the link is left behind
    index, path = saved
    parent = path.parent
    os.symlink("index", parent / "current")
    bigger = fit_index(X[:50], encoder)
    bigger.add(X[50:53] + 1.0)
    bigger.save(parent / "current")
    assert sorted(os.listdir(parent)) == ["current", "index"]
    assert os.readlink(parent / "current") == "index"
    assert len(HashIndex.load(path, verify=True)) == 53
    encoder.save(parent / "current")  # the encoder's save: the same rule
    assert sorted(os.listdir(parent)) == ["current", "index"]
    assert os.readlink(parent / "current") == "index"
    assert type(load_encoder(path, verify=True)) is BinaryHashEncoder


def test_save_into_an_empty_directory(tmp_path, saved, encoder, Q):
    # e.g. tempfile.TemporaryDirectory() or a directory made beforehand: nothing to lose
    index, _ = saved
    (tmp_path / "empty").mkdir()
    index.save(tmp_path / "empty")
    assert_same_answers(index, HashIndex.load(tmp_path / "empty", verify=True), Q)
    (tmp_path / "empty2").mkdir()
    encoder.save(tmp_path / "empty2")
    assert type(load_encoder(tmp_path / "empty2")) is BinaryHashEncoder
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]


def test_save_respects_the_umask_and_keeps_the_replaced_directory_mode(tmp_path, saved, encoder):
    # a new directory gets the mode mkdir(2) would give it (umask applied, as the files
    # inside have); replacing one keeps the mode its owner chose for it
    index, path = saved
    old_umask = os.umask(0o077)
    try:
        index.save(tmp_path / "private")
        encoder.save(tmp_path / "private_encoder")
    finally:
        os.umask(old_umask)
    for saved_dir in (tmp_path / "private", tmp_path / "private_encoder"):
        modes = {p.name: p.stat().st_mode & 0o777 for p in [saved_dir, *saved_dir.rglob("*")]}
        assert set(modes.values()) <= {0o700, 0o600}, modes
        assert modes[saved_dir.name] == 0o700
    os.chmod(path, 0o750)
    index.save(path)
    assert path.stat().st_mode & 0o777 == 0o750


def test_a_directory_that_cannot_be_moved_aside_leaves_nothing_behind(saved, monkeypatch):
    # "." cannot be renamed (EBUSY): the complete new directory written beside it is removed
    index, path = saved
    before = {p.name: p.read_bytes() for p in path.iterdir() if p.is_file()}
    monkeypatch.chdir(path)
    with pytest.raises(OSError):
        index.save(".")
    assert sorted(os.listdir(path.parent)) == ["index"]
    assert {p.name: p.read_bytes() for p in path.iterdir() if p.is_file()} == before


def test_save_fsyncs_the_new_directories_before_renaming_them_in(saved, monkeypatch):
    # the files' data is synced, and so must be the directories that name them: else a
    # crash after the rename can leave the new directory with entries missing
    import skhash._persistence as module

    index, path = saved
    synced, fsync = [], module._fsync
    monkeypatch.setattr(module, "_fsync", lambda p: (synced.append(str(p)), fsync(p)))
    renames, rename = [], os.rename
    monkeypatch.setattr(os, "rename", lambda a, b: (renames.append(len(synced)), rename(a, b)))
    index.save(path)
    tmp = next(p for p in synced if os.path.basename(p).startswith(".index.tmp-"))
    before = synced[: renames[-1]]  # synced before the new directory was renamed in
    assert {tmp, os.path.join(tmp, "encoder")} <= set(before)


def test_refuses_to_replace_a_foreign_directory(tmp_path, saved):
    index, _ = saved
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a directory saved by skhash"):
        index.save(tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize(
    "manifest", ['{"name": "my web app", "start_url": "/"}', "{not json", "[]"]
)
def test_refuses_to_replace_a_foreign_directory_with_a_manifest_json(
    tmp_path, encoder, saved, manifest
):
    # manifest.json is a common name (web apps, browser extensions): only skhash's counts
    index, _ = saved
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "manifest.json").write_text(manifest)
    (tmp_path / "app" / "index.html").write_text("keep me")
    for save in (index.save, encoder.save):
        with pytest.raises(FileExistsError, match="not a directory saved by skhash"):
            save(tmp_path / "app")
    assert (tmp_path / "app" / "index.html").read_text() == "keep me"
    assert (tmp_path / "app" / "manifest.json").read_text() == manifest


def edit_manifest(path, change):
    manifest = json.loads((path / "manifest.json").read_text())
    change(manifest)
    (path / "manifest.json").write_text(json.dumps(manifest))


def test_refuses_a_newer_format(saved):
    _, path = saved
    edit_manifest(path, lambda m: m.update(format_version=FORMAT_VERSION + 1))
    with pytest.raises(ValueError, match="Upgrade skhash"):
        HashIndex.load(path)


def test_detects_truncated_files(saved):
    _, path = saved
    data = (path / "vectors.npy").read_bytes()
    (path / "vectors.npy").write_bytes(data[:-10])
    with pytest.raises(ValueError, match="truncated or altered"):
        HashIndex.load(path)


def test_detects_altered_files_on_request(saved):
    _, path = saved
    data = bytearray((path / "codes.npy").read_bytes())
    data[-1] ^= 0xFF  # same size, other content
    (path / "codes.npy").write_bytes(bytes(data))
    HashIndex.load(path)  # sizes only: not detected
    with pytest.raises(ValueError, match="SHA-256"):
        HashIndex.load(path, verify=True)


def test_encoder_load_verifies_on_request(tmp_path, encoder):
    encoder.save(tmp_path / "enc")
    weights = next(p for p in (tmp_path / "enc").iterdir() if p.name != "manifest.json")
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # same size, other content
    weights.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="SHA-256"):
        type(encoder).load(tmp_path / "enc", verify=True)


@pytest.mark.parametrize(
    "damage, match",
    [
        (lambda p: (p / "ids.npy").unlink(), "missing"),
        (lambda p: (p / "manifest.json").write_text("{not json"), "not valid JSON"),
        (lambda p: (p / "manifest.json").unlink(), "no manifest.json"),
        (lambda p: edit_manifest(p, lambda m: m.update(format="other")), "not a saved"),
        (
            lambda p: edit_manifest(
                p, lambda m: m["files"].update({"../x": {"size": 1, "sha256": ""}})
            ),
            "outside",
        ),
    ],
)
def test_damaged_directories(saved, damage, match):
    _, path = saved
    damage(path)
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        HashIndex.load(path)


@pytest.mark.parametrize(
    "where, change",
    [
        ("", lambda m: m.pop("n_items")),
        ("", lambda m: m.pop("params")),
        ("", lambda m: m.pop("encoder")),
        ("", lambda m: m.update(encoder=[])),
        ("", lambda m: m["files"].update({"ids.npy": 3})),
        ("encoder", lambda m: m.pop("n_features_in")),
        ("encoder", lambda m: m.pop("n_bits")),
        ("encoder", lambda m: m.update(n_features_in="ten")),
        ("encoder", lambda m: m.update(hidden_layer_sizes=None)),
        ("encoder", lambda m: m.update(params="n_bits=16")),
    ],
)
def test_a_manifest_with_missing_or_malformed_fields_is_a_clear_error(saved, where, change):
    _, path = saved
    edit_manifest(path / where, change)
    load = (lambda: load_encoder(path / where)) if where else (lambda: HashIndex.load(path))
    with pytest.raises(ValueError, match="manifest.json lacks a field.*damaged"):
        load()


def test_prefix_bits_set_after_fit_round_trips_unused(tmp_path, X, encoder, Q):
    # prefix_bits takes effect at the next fit: the saved codes keep the fitted length
    index = fit_index(X, encoder, n_candidates=3).set_params(prefix_bits=8)
    index.save(tmp_path / "ix")
    loaded = HashIndex.load(tmp_path / "ix")
    assert loaded.prefix_bits == 8 and loaded.n_bits_ == index.n_bits_ == 16
    assert_same_answers(index, loaded, Q)


@pytest.mark.parametrize(
    "change, match",
    [
        # 9 of the 16 bits: queries encoded shorter than the stored codes (wrong answers)
        (lambda m: m.update(n_bits=9), "n_bits 9"),
        (lambda m: m.update(n_bits=16.0), "n_bits 16.0"),
        (lambda m: m.update(n_bits=17), "n_bits 17"),
        (lambda m: m.update(vector_scale="x"), "vector_scale"),
        (lambda m: m.update(vector_scale=-1.0), "vector_scale"),
        (lambda m: m["encoder"].update(frozen="no"), "frozen"),
        (lambda m: m.update(feature_names_in=["a"]), "feature_names_in"),
    ],
)
def test_manifest_fields_that_disagree_with_the_files_are_damage(
    tmp_path, X, encoder, change, match
):
    fit_index(X, encoder, rescore="int8").save(tmp_path / "ix")
    edit_manifest(tmp_path / "ix", change)
    with pytest.raises(ValueError, match=match):
        HashIndex.load(tmp_path / "ix")


def test_an_index_manifest_whose_width_is_not_the_encoders_is_damage(tmp_path, X, encoder):
    # no vectors to check it against: the width was only caught by the first query
    fit_index(X, encoder, rescore=None).save(tmp_path / "ix")
    edit_manifest(tmp_path / "ix", lambda m: m.update(n_features_in=11))
    with pytest.raises(ValueError, match="n_features_in 11"):
        HashIndex.load(tmp_path / "ix")


def test_loading_never_unpickles(saved, tmp_path):
    _, path = saved
    marker = tmp_path / "pwned"
    payload = np.empty(len(np.load(path / "ids.npy")), dtype=object)
    payload[0] = _Boom(str(marker))
    np.save(path / "ids.npy", payload, allow_pickle=True)
    size = (path / "ids.npy").stat().st_size
    edit_manifest(path, lambda m: m["files"]["ids.npy"].update(size=size))
    with pytest.raises(ValueError, match="ids.npy"):
        HashIndex.load(path)
    assert not marker.exists()


class _Boom:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_only_skhash_encoders_and_plain_parameters_are_saved(tmp_path, X, encoder):
    from sklearn.preprocessing import Binarizer

    index = HashIndex(encoder=Binarizer(threshold=0.0)).fit(X)  # 0/1 bits: an encoder
    with pytest.raises(TypeError, match="BinaryHashEncoder, SimHash or PCAITQ"):
        index.save(tmp_path / "a")
    index = HashIndex(encoder=FrozenEstimator(encoder), random_state=np.random.RandomState(0)).fit(
        X
    )
    with pytest.raises(TypeError, match="random_state"):
        index.save(tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    assert os.listdir(tmp_path) == []


def test_loaded_index_queries_without_torch(saved, Q):
    index, path = saved
    np.save(path.parent / "q.npy", Q)
    code = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        from skhash import HashIndex
        index = HashIndex.load({str(path)!r}, verify=True)
        ids = index.kneighbors(np.load({str(path.parent / "q.npy")!r}), 7)[1]
        np.save({str(path.parent / "ids.npy")!r}, ids)
        print("torch" in sys.modules, "skorch" in sys.modules)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]
    np.testing.assert_array_equal(np.load(path.parent / "ids.npy"), index.kneighbors(Q, 7)[1])


def test_encoder_teacher_temperature_in_the_manifest(tmp_path, encoder):
    save_encoder(encoder, tmp_path / "enc")
    # files written before the field existed load without it
    edit_manifest(tmp_path / "enc", lambda m: m.pop("teacher_temperature"))
    assert not hasattr(load_encoder(tmp_path / "enc"), "teacher_temperature_")
    for bad in ("cold", -1.0, True):
        edit_manifest(tmp_path / "enc", lambda m, bad=bad: m.update(teacher_temperature=bad))
        with pytest.raises(ValueError, match="teacher_temperature"):
            load_encoder(tmp_path / "enc")


def test_save_refuses_an_index_whose_shared_encoder_was_refitted(tmp_path, X, Q):
    encoder = BinaryHashEncoder(random_state=0, **FAST).fit(X)
    index = HashIndex(encoder=FrozenEstimator(encoder), rescore=None).fit(X)
    path = tmp_path / "index"
    index.save(path)
    encoder.set_params(random_state=1).fit(X[::-1])  # the FrozenEstimator shares it
    with pytest.raises(ValueError, match="refitted after the index was built"):
        index.save(path)
    assert_same_answers(HashIndex.load(path), index, Q)  # the saved index is untouched


@pytest.mark.parametrize("asymmetric", [False, True])
def test_a_shared_linear_hash_refitted_changes_no_query_and_is_not_saved(
    tmp_path, X, Q, asymmetric
):
    hasher = PCAITQ(n_bits=16, random_state=0).fit(X)
    index = HashIndex(encoder=FrozenEstimator(hasher), rescore=None, asymmetric=asymmetric)
    index.fit(X)
    index.save(tmp_path / "index")
    codes, before = index.codes_.copy(), index.kneighbors(Q, 5)
    hasher.set_params(random_state=1).fit(X[: len(X) // 2])  # the FrozenEstimator shares it
    for a, b in zip(index.kneighbors(Q, 5), before, strict=True):  # encoded as fitted
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="refitted after the index was built"):
        index.save(tmp_path / "index")
    np.testing.assert_array_equal(HashIndex.load(tmp_path / "index").codes_, codes)
    del index._linear_state  # an index pickled before the check: saved as before
    index.save(tmp_path / "old")


def test_tuples_the_default_encoder_and_subclasses_round_trip(tmp_path, X):
    encoder = BinaryHashEncoder(random_state=0, nested_bits=(8,), **FAST).fit(X)
    HashIndex(encoder=FrozenEstimator(encoder)).fit(X).save(tmp_path / "a")
    loaded = HashIndex.load(tmp_path / "a").encoder.estimator
    assert loaded.get_params() == encoder.get_params()
    assert loaded.nested_bits == (8,) and loaded.hidden_layer_sizes == (32,)

    class MyIndex(HashIndex):
        pass

    index = MyIndex(rescore=None).set_params(encoder=None)
    index.fit(X[:60])  # the default BinaryHashEncoder(n_bits=64)
    index.save(tmp_path / "b")
    again = MyIndex.load(tmp_path / "b")
    assert type(again) is MyIndex and again.encoder is None and again.rescore_ is None


@pytest.mark.parametrize("cls", [SimHash, PCAITQ])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_hashes_round_trip_alone_and_in_an_index(tmp_path, X, Q, cls, dtype):
    hasher = cls(n_bits=20, random_state=0).fit(X.astype(dtype))
    hasher.save(tmp_path / "h")
    loaded = cls.load(tmp_path / "h", verify=True)
    assert type(loaded) is cls and loaded.get_params() == hasher.get_params()
    for name in ("mean_", "projection_"):
        got, want = getattr(loaded, name), getattr(hasher, name)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(loaded.transform(Q), hasher.transform(Q))
    np.testing.assert_array_equal(loaded.embed(Q), hasher.embed(Q))
    other = PCAITQ if cls is SimHash else SimHash
    with pytest.raises(ValueError, match=f"holds a saved {cls.__name__}, not a {other.__name__}"):
        other.load(tmp_path / "h")
    with pytest.raises(ValueError, match="not a BinaryHashEncoder"):
        BinaryHashEncoder.load(tmp_path / "h")

    for encoder in (cls(n_bits=20, random_state=0), FrozenEstimator(hasher)):
        index = HashIndex(encoder=encoder, asymmetric=True).fit(X, ids=np.arange(len(X)) * 3)
        index.save(tmp_path / "ix")
        again = HashIndex.load(tmp_path / "ix", verify=True)
        assert_same_answers(index, again, Q)
        np.testing.assert_array_equal(again.codes_, index.codes_)
        assert type(again.encoder_) is type(index.encoder_)


def test_damaged_linear_hash_files_are_clear_errors(tmp_path, X):
    SimHash(n_bits=12, random_state=0).fit(X).save(tmp_path / "h")
    np.save(tmp_path / "h" / "projection.npy", np.zeros((10, 11)))  # another shape
    manifest = json.loads((tmp_path / "h" / "manifest.json").read_text())
    size = (tmp_path / "h" / "projection.npy").stat().st_size
    manifest["files"]["projection.npy"]["size"] = size  # consistent sizes: the shape is caught
    (tmp_path / "h" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="shapes"):
        SimHash.load(tmp_path / "h")
    for name, value in (("n_features_in", 10.0), ("n_bits", True)):
        bad = {**manifest, name: value}
        (tmp_path / "h" / "manifest.json").write_text(json.dumps(bad))
        with pytest.raises(ValueError, match=f"{name} .* is not a positive int"):
            SimHash.load(tmp_path / "h")
    bad = {**manifest, "feature_names_in": ["a", "b"]}
    (tmp_path / "h" / "manifest.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="does not name 10 features"):
        SimHash.load(tmp_path / "h")
    manifest["class"] = "LSH"
    (tmp_path / "h" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="unknown linear hash class 'LSH'"):
        SimHash.load(tmp_path / "h")


@pytest.mark.parametrize("cls", [SimHash, PCAITQ, BinaryHashEncoder])
def test_unfitted_encoders_do_not_save_and_missing_directories_do_not_load(tmp_path, cls):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        cls().save(tmp_path / "h")
    assert not (tmp_path / "h").exists()
    with pytest.raises(FileNotFoundError, match="no manifest.json"):
        cls.load(tmp_path / "nowhere")


def test_an_error_building_the_loaded_index_is_not_called_damage(saved, monkeypatch):
    _, path = saved

    def broken(self, ids, codes, vectors):
        raise KeyError("a bug in the index, not in the file")

    monkeypatch.setattr(HashIndex, "_make_state", broken)
    with pytest.raises(KeyError, match="a bug in the index"):
        HashIndex.load(path)


@pytest.mark.parametrize("make", [lambda: PCAITQ(n_bits=16), lambda: SimHash(n_bits=16)])
def test_set_output_is_saved_and_loaded(tmp_path, make, X):
    # pickle and joblib keep set_output's choice; so does save/load
    pd = pytest.importorskip("pandas")
    encoder = make().set_output(transform="pandas").fit(X)
    encoder.save(tmp_path / "enc")
    loaded = type(encoder).load(tmp_path / "enc")
    out = loaded.transform(X[:5])
    assert isinstance(out, pd.DataFrame)
    pd.testing.assert_frame_equal(out, encoder.transform(X[:5]))
    make().fit(X).save(tmp_path / "plain")  # no set_output: arrays, as before
    assert isinstance(type(encoder).load(tmp_path / "plain").transform(X[:5]), np.ndarray)


def test_set_output_of_the_network_is_saved_and_loaded(tmp_path, encoder, X):
    pd = pytest.importorskip("pandas")
    frame_encoder = copy.deepcopy(encoder).set_output(transform="pandas")
    frame_encoder.save(tmp_path / "enc")
    out = BinaryHashEncoder.load(tmp_path / "enc").transform(X[:5])
    pd.testing.assert_frame_equal(out, frame_encoder.transform(X[:5]))
