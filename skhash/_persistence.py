"""Saving and loading encoders and indexes as plain files: a JSON manifest and arrays.

A saved object is a directory::

    manifest.json           format, format version, skhash version, parameters,
                            bit order, n_bits, and the size and SHA-256 of every file
    weights.safetensors     the encoder network and its anchors, if any (``weights/<name>.npy``
                            without safetensors)
    mean.npy, projection.npy                 (SimHash or PCAITQ instead of a network)
    ids.npy, codes.npy, vectors.npy          (an index; the encoder in ``encoder/``)

Loading reads JSON, safetensors and ``.npy`` files with ``allow_pickle=False``: it
runs no code from the files. It refuses a newer format version, checks every
file's size (a truncated or extended file is an error) and, with ``verify=True``,
its SHA-256. Saving writes a temporary directory beside the target and renames it
into place; an existing skhash directory is renamed aside first and deleted last,
so the target is either the old or the new complete directory, and an index
loaded from it (its vectors memory-mapped) keeps reading the old, unlinked files.
A target that is a symbolic link is followed: the directory it points to is
replaced, and the link kept.
"""

# Authors: The skhash developers
# SPDX-License-Identifier: BSD-3-Clause

import contextlib
import hashlib
import json
import math
import numbers
import os
import shutil
import stat
import sys
import uuid
from pathlib import Path, PurePosixPath

import numpy as np

__all__ = [
    "FORMAT_VERSION",
    "EncoderFilesMixin",
    "load_encoder",
    "load_index",
    "save_encoder",
    "save_index",
]

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
BIT_ORDER = "numpy.packbits, big: bit 0 of a code is the most significant bit of byte 0"
_ENCODER_FORMAT = "skhash.BinaryHashEncoder"
_LINEAR_FORMAT = "skhash.LinearHash"  # SimHash, PCAITQ: codes (X - mean) @ projection > 0
_ENCODER_FORMATS = (_ENCODER_FORMAT, _LINEAR_FORMAT)
_INDEX_FORMAT = "skhash.HashIndex"
_MAX_MANIFEST_BYTES = 16 << 20
_INDEX_PARAMS = (
    "algorithm",
    "n_candidates",
    "rescore",
    "asymmetric",
    "prefix_bits",
    "n_jobs",
    "random_state",
)


def _skhash_version():
    return getattr(sys.modules.get("skhash"), "__version__", "unknown")


# -- writing ---------------------------------------------------------------------------------


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _save_npy(directory, name, array, files, prefix=""):
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        np.save(f, np.ascontiguousarray(array), allow_pickle=False)
        f.flush()
        os.fsync(f.fileno())
    files[prefix + name] = {"size": path.stat().st_size, "sha256": _sha256(path)}


def _jsonable(name, value):
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        if not math.isfinite(value):
            raise ValueError(f"Cannot save the parameter {name}={value!r}: not finite.")
        return float(value)
    if isinstance(value, tuple | list):
        return [_jsonable(name, v) for v in value]
    if isinstance(value, np.random.RandomState):
        raise TypeError(
            f"Cannot save {name}=RandomState(...) as plain data; use an int seed or None."
        )
    raise TypeError(f"Cannot save the parameter {name}={value!r} as plain data.")


def _write_manifest(directory, manifest):
    path = directory / MANIFEST
    with open(path, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())


def _saved_by_skhash(path):
    """Whether ``path`` is a directory whose manifest names an skhash format.

    ``manifest.json`` alone is a common file name (web apps, browser extensions):
    a directory is replaced only when its manifest is skhash's.
    """
    manifest = path / MANIFEST
    if not (path.is_dir() and manifest.is_file()):
        return False
    if manifest.stat().st_size > _MAX_MANIFEST_BYTES:
        return False
    try:
        content = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(content, dict) and content.get("format") in (
        *_ENCODER_FORMATS,
        _INDEX_FORMAT,
    )


def _empty_directory(path):
    """Whether ``path`` is an empty directory (made beforehand, a TemporaryDirectory)."""
    try:
        with os.scandir(path) as entries:
            return next(entries, None) is None
    except OSError:  # not a directory, or unreadable
        return False


def _new_directory(prefix):
    """A new directory ``prefix + random``, mode 0o777 less the umask (as mkdir(1) gives).

    Not ``tempfile.mkdtemp``: its 0o700 would end up as the saved directory's mode.
    """
    while True:
        candidate = Path(f"{prefix}{uuid.uuid4().hex[:12]}")
        try:
            os.mkdir(candidate)
            return candidate
        except FileExistsError:
            continue


def _replace_directory(path, write):
    """Write a directory with ``write(tmp)`` beside ``path``, then move it into place.

    A symbolic link at ``path`` is followed: the directory it points to is
    replaced and the link kept (renaming the link itself aside would turn it
    into a real directory and leave the old link behind).
    """
    path = Path(path)
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    if path.exists() and not (_saved_by_skhash(path) or _empty_directory(path)):
        raise FileExistsError(
            f"{path} exists, is not empty and is not a directory saved by skhash (no "
            "readable skhash manifest.json in it); not replacing it."
        )
    parent = path.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_directory(parent / f".{path.name}.tmp-")
    try:
        if path.exists():  # a replaced directory keeps the mode its owner gave it
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
        write(tmp)
        # the directories naming the (synced) files: else a crash after the rename
        # below can leave the new directory with entries missing
        for directory, _, _ in os.walk(tmp, topdown=False):
            _fsync(directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    try:
        if path.exists():
            # rename(2) cannot replace a non-empty directory: move the old one aside first
            aside = parent / f".{path.name}.old-{uuid.uuid4().hex}"
            os.rename(path, aside)
            old = aside
        os.rename(tmp, path)
    except BaseException:
        if old is not None:
            os.rename(old, path)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync(parent)
    if old is not None:
        # open memory maps of the old files stay valid: unlinking keeps the inodes
        shutil.rmtree(old, ignore_errors=True)


def _fitted_teacher_temperature(encoder):
    """The teacher temperature the encoder was trained with, or None if unknown (older file)."""
    value = getattr(encoder, "teacher_temperature_", None)
    return None if value is None else float(value)


def _encoder_manifest_head(encoder, format, n_bits):
    """The manifest fields every saved encoder has (``files`` added by the caller)."""
    names = getattr(encoder, "feature_names_in_", None)
    return {
        "format": format,
        "format_version": FORMAT_VERSION,
        "skhash_version": _skhash_version(),
        "class": type(encoder).__name__,
        "params": {k: _jsonable(k, v) for k, v in encoder.get_params(deep=False).items()},
        "n_bits": int(n_bits),
        "bit_order": BIT_ORDER,
        "n_features_in": int(encoder.n_features_in_),
        "feature_names_in": None if names is None else [str(n) for n in names],
        # set_output's choice, as pickle keeps it (None: scikit-learn's default)
        "transform_output": getattr(encoder, "_sklearn_output_config", {}).get("transform"),
    }


def _linear_manifest_and_files(encoder, directory, prefix=""):
    """Write a SimHash's or PCAITQ's arrays into ``directory``; return its manifest."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(encoder)
    head = _encoder_manifest_head(encoder, _LINEAR_FORMAT, encoder.projection_.shape[1])
    files = {}
    # their dtype is kept: float32 and float64 projections threshold rows differently
    _save_npy(directory, "mean.npy", encoder.mean_, files, prefix)
    _save_npy(directory, "projection.npy", encoder.projection_, files, prefix)
    return {**head, "files": files}


def _encoder_manifest_and_files(encoder, directory, prefix=""):
    """Write the encoder's arrays into ``directory``; return its manifest (files included)."""
    from ._baselines import PCAITQ, SimHash
    from ._index import _module_state

    if type(encoder) in (SimHash, PCAITQ):
        return _linear_manifest_and_files(encoder, directory, prefix)
    state = _module_state(encoder)
    if state is None:
        raise TypeError(
            "Only a fitted BinaryHashEncoder, SimHash or PCAITQ can be saved, got "
            f"{type(encoder).__name__}."
        )
    head = _encoder_manifest_head(encoder, _ENCODER_FORMAT, state["linear.weight"].shape[0])
    sizes = getattr(encoder, "hidden_layer_sizes_", None)
    if sizes is None:
        sizes = encoder._hidden_layer_sizes()
    files = {}
    arrays = {k: np.ascontiguousarray(v) for k, v in state.items()}
    try:
        from safetensors.numpy import save_file
    except ImportError:
        weights = {"format": "npy", "dir": "weights"}
        for key, value in arrays.items():
            _save_npy(directory, f"weights/{key}.npy", value, files, prefix)
    else:
        weights = {"format": "safetensors", "file": "weights.safetensors"}
        path = directory / "weights.safetensors"
        save_file(arrays, str(path))
        _fsync(path)
        files[prefix + "weights.safetensors"] = {
            "size": path.stat().st_size,
            "sha256": _sha256(path),
        }
    return {
        **head,
        "hidden_layer_sizes": [int(s) for s in sizes],
        "teacher_temperature": _fitted_teacher_temperature(encoder),
        "weights": weights,
        "weight_keys": sorted(arrays),
        "files": files,
    }


def save_encoder(encoder, path):
    """Save a fitted encoder to the directory ``path``.

    Parameters
    ----------
    encoder : BinaryHashEncoder, SimHash or PCAITQ
        A fitted encoder (a network's state, ``module_state_``, or a linear
        hash's ``mean_`` and ``projection_``, is saved).
    path : str or path-like
        Target directory, replaced atomically if it holds a saved skhash object
        (through a symbolic link: the directory it points to, the link kept).
    """

    def write(tmp):
        manifest = _encoder_manifest_and_files(encoder, tmp)
        _write_manifest(tmp, manifest)

    _replace_directory(path, write)


class EncoderFilesMixin:
    """``save`` and ``load`` for the encoders (BinaryHashEncoder, SimHash, PCAITQ)."""

    def save(self, path):
        """Save the fitted encoder to the directory ``path``, without pickle.

        A JSON manifest and the fitted arrays (a network's weights as
        safetensors, a linear hash's ``mean_`` and ``projection_`` as ``.npy`` in
        their dtype); :meth:`load` reads it back into an encoder that gives the
        same codes and needs no torch. An existing directory saved by skhash is
        replaced atomically (a symbolic link to one is followed: the directory it
        points to is replaced, the link kept); any other existing path is an error.

        Parameters
        ----------
        path : str or path-like
            Target directory.
        """
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        save_encoder(self, path)

    @classmethod
    def load(cls, path, *, verify=False):
        """Load an encoder written by :meth:`save`.

        Parameters
        ----------
        path : str or path-like
            Directory written by :meth:`save`.
        verify : bool, default=False
            Also check every file's SHA-256 (sizes are always checked).

        Returns
        -------
        encoder : an instance of this class
            Fitted as saved; a directory holding another class is an error. A
            ``BinaryHashEncoder`` comes back with ``module_state_``,
            ``hidden_layer_sizes_``, ``n_features_in_`` (and
            ``feature_names_in_`` if it had them) and no ``net_`` or
            ``history_``: it encodes with the numpy forward pass.
        """
        loaded = load_encoder(path, verify=verify)
        if not isinstance(loaded, cls):
            raise ValueError(
                f"{path} holds a saved {type(loaded).__name__}, not a {cls.__name__}."
            )
        return loaded


def _same_state(a, b):
    """Whether two network states (dicts of arrays, or None) hold the same weights."""
    if a is b:
        return True
    if a is None or b is None or sorted(a) != sorted(b):
        return False
    return all(np.array_equal(a[k], b[k]) for k in a)


def save_index(index, path):
    """Save a fitted :class:`~skhash.HashIndex` to the directory ``path``."""
    from sklearn.frozen import FrozenEstimator
    from sklearn.utils.validation import check_is_fitted

    from ._index import _inner_encoder, _linear_state, _module_state

    check_is_fitted(index)
    state = index._state  # one consistent snapshot
    params = {k: _jsonable(k, getattr(index, k)) for k in _INDEX_PARAMS}
    encoder = _inner_encoder(index.encoder_)
    made_codes = _same_state(_module_state(encoder), index._network_state)
    if hasattr(index, "_linear_state"):  # not on an index pickled before it existed
        made_codes = made_codes and _same_state(_linear_state(encoder), index._linear_state)
    if not made_codes:
        # a FrozenEstimator shares the user's encoder: refitted, its weights are not
        # those that made the codes, and the saved index would answer with the wrong ones
        raise ValueError(
            "The index's encoder was refitted after the index was built (a "
            "FrozenEstimator shares it): its weights no longer made the stored codes. "
            "Fit the index again, or save it before refitting the encoder."
        )

    def write(tmp):
        files = {}
        encoder_dir = tmp / "encoder"
        encoder_dir.mkdir()
        encoder_manifest = _encoder_manifest_and_files(encoder, encoder_dir, prefix="encoder/")
        files.update(encoder_manifest["files"])
        _write_manifest(
            encoder_dir,
            {
                **encoder_manifest,
                "files": {
                    k.removeprefix("encoder/"): v for k, v in encoder_manifest["files"].items()
                },
            },
        )
        files["encoder/" + MANIFEST] = {
            "size": (encoder_dir / MANIFEST).stat().st_size,
            "sha256": _sha256(encoder_dir / MANIFEST),
        }
        _save_npy(tmp, "ids.npy", state.ids, files)
        _save_npy(tmp, "codes.npy", state.codes, files)
        if state.vectors is not None:
            _save_npy(tmp, "vectors.npy", state.vectors, files)
        names = getattr(index, "feature_names_in_", None)
        manifest = {
            "format": _INDEX_FORMAT,
            "format_version": FORMAT_VERSION,
            "skhash_version": _skhash_version(),
            "class": type(index).__name__,
            "params": params,
            "encoder": {
                "dir": "encoder",
                "frozen": isinstance(index.encoder_, FrozenEstimator),
                # encoder=None (the default encoder) is kept as None
                "param_is_none": index.encoder is None,
            },
            "n_bits": int(index.n_bits_),
            "bit_order": BIT_ORDER,
            "n_items": int(state.ids.shape[0]),
            "n_features_in": int(index.n_features_in_),
            "feature_names_in": None if names is None else [str(n) for n in names],
            "vectors_dtype": None if state.vectors is None else str(state.vectors.dtype),
            "vector_scale": index.vector_scale_,
            "files": files,
        }
        _write_manifest(tmp, manifest)

    _replace_directory(path, write)


# -- reading ---------------------------------------------------------------------------------


class _Corrupt(ValueError):
    pass


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


@contextlib.contextmanager
def _manifest_fields(directory):
    """Turn a field missing from ``directory``'s manifest, or of the wrong type, into
    an error naming the file (rather than a bare ``KeyError: 'n_bits'``)."""
    try:
        yield
    except (KeyError, TypeError, AttributeError, IndexError) as exc:
        raise _Corrupt(
            f"{Path(directory) / MANIFEST} lacks a field or holds one of the wrong type "
            f"({type(exc).__name__}: {exc}); the file is damaged."
        ) from exc


def _read_manifest(directory, expected_format):
    """The manifest of ``directory``, checked; ``expected_format`` is one or a tuple."""
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{directory} has no {MANIFEST}: not a saved skhash object.")
    if path.stat().st_size > _MAX_MANIFEST_BYTES:
        raise _Corrupt(f"{path} is larger than any manifest skhash writes.")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _Corrupt(f"{path} is not valid JSON ({exc}); the file is damaged.") from None
    expected = expected_format if isinstance(expected_format, tuple) else (expected_format,)
    if not isinstance(manifest, dict) or manifest.get("format") not in expected:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise ValueError(f"{directory} holds {found!r}, not a saved {' or '.join(expected)}.")
    version = manifest.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise _Corrupt(f"{path} has no valid format_version.")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{directory} was saved by skhash {manifest.get('skhash_version')} in format "
            f"version {version}; this skhash ({_skhash_version()}) reads versions up to "
            f"{FORMAT_VERSION}. Upgrade skhash to load it."
        )
    return manifest


def _check_files(directory, files, verify):
    """Sizes (always) and SHA-256 (``verify``) of the files a manifest lists."""
    directory = Path(directory).resolve()
    if not isinstance(files, dict):
        raise _Corrupt(f"The manifest of {directory} lists no files.")
    for name, entry in files.items():
        relative = PurePosixPath(name)
        if relative.is_absolute() or ".." in relative.parts:
            raise _Corrupt(f"The manifest of {directory} names a file outside it: {name!r}.")
        path = directory / relative
        if not path.is_file():
            raise _Corrupt(f"{path} is missing.")
        size = path.stat().st_size
        if size != entry.get("size"):
            raise _Corrupt(
                f"{path} has {size} bytes, the manifest says {entry.get('size')}: the file is "
                "truncated or altered."
            )
        if verify and _sha256(path) != entry.get("sha256"):
            raise _Corrupt(f"{path} does not match its SHA-256 in the manifest: it was altered.")


def _load_npy(path, mmap=False):
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except ValueError as exc:
        raise _Corrupt(f"{path} is not a valid .npy array file ({exc}).") from None


def _load_weights(directory, manifest):
    weights = manifest.get("weights") or {}
    keys = manifest.get("weight_keys") or []
    if weights.get("format") == "safetensors":
        try:
            from safetensors.numpy import load_file
        except ImportError:
            raise ImportError(
                "This encoder was saved with safetensors; install it (pip install "
                "safetensors) to load it."
            ) from None
        try:
            state = load_file(str(Path(directory) / weights["file"]))
        except Exception as exc:  # safetensors raises its own error types
            raise _Corrupt(f"{directory}: unreadable weights ({exc}).") from None
    elif weights.get("format") == "npy":
        state = {k: _load_npy(Path(directory) / "weights" / f"{k}.npy") for k in keys}
    else:
        raise _Corrupt(f"{directory}: unknown weights format {weights.get('format')!r}.")
    if sorted(state) != sorted(keys):
        raise _Corrupt(f"{directory}: the weights do not hold the arrays the manifest lists.")
    from ._inference import read_only_state

    return read_only_state({k: np.asarray(v) for k, v in state.items()})


def _encoder_from(directory, manifest):
    with _manifest_fields(directory):
        if manifest["format"] == _LINEAR_FORMAT:
            encoder = _linear_encoder_from_fields(directory, manifest)
        else:
            encoder = _encoder_from_fields(directory, manifest)
        output = manifest.get("transform_output")  # absent from older files
    if output is not None:
        if output not in ("default", "pandas", "polars"):
            raise _Corrupt(f"{directory}: transform_output {output!r} is not a set_output value.")
        encoder.set_output(transform=output)
    return encoder


def _saved_params(directory, manifest):
    params = manifest.get("params") or {}
    if not isinstance(params, dict):
        raise TypeError(f"params is {type(params).__name__}, not an object")
    return dict(params)


def _linear_encoder_from_fields(directory, manifest):
    from ._baselines import PCAITQ, SimHash

    classes = {"SimHash": SimHash, "PCAITQ": PCAITQ}
    if manifest["class"] not in classes:
        raise _Corrupt(f"{directory}: unknown linear hash class {manifest['class']!r}.")
    try:
        encoder = classes[manifest["class"]](**_saved_params(directory, manifest))
    except TypeError as exc:
        raise ValueError(
            f"{directory}: the saved encoder parameters do not fit this skhash ({exc})."
        ) from None
    n_features, n_bits = manifest["n_features_in"], manifest["n_bits"]
    for name, value in (("n_features_in", n_features), ("n_bits", n_bits)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise _Corrupt(f"{directory}: {name} {value!r} is not a positive int.")
    names = manifest.get("feature_names_in")
    if names is not None and (not isinstance(names, list) or len(names) != n_features):
        raise _Corrupt(f"{directory}: feature_names_in does not name {n_features} features.")
    mean = _load_npy(Path(directory) / "mean.npy")
    projection = _load_npy(Path(directory) / "projection.npy")
    if (
        mean.dtype not in (np.float32, np.float64)
        or projection.dtype != mean.dtype
        or mean.shape != (n_features,)
        or projection.shape != (n_features, n_bits)
    ):
        raise _Corrupt(
            f"{directory}: mean.npy and projection.npy must be float arrays of one dtype "
            f"with shapes ({n_features},) and ({n_features}, {n_bits})."
        )
    encoder.mean_, encoder.projection_ = mean, projection
    encoder.n_features_in_ = n_features
    if manifest.get("feature_names_in") is not None:
        encoder.feature_names_in_ = np.asarray(manifest["feature_names_in"], dtype=object)
    return encoder


def _encoder_from_fields(directory, manifest):
    from ._encoder import BinaryHashEncoder
    from ._inference import forward

    params = _saved_params(directory, manifest)
    for name in ("hidden_layer_sizes", "nested_bits"):  # tuples, which JSON keeps as lists
        if isinstance(params.get(name), list):
            params[name] = tuple(params[name])
    try:
        encoder = BinaryHashEncoder(**params)
    except TypeError as exc:
        raise ValueError(
            f"{directory}: the saved encoder parameters do not fit this skhash ({exc})."
        ) from None
    state = _load_weights(directory, manifest)
    n_features = manifest["n_features_in"]
    try:  # shapes consistent: one forward pass on a zero row
        out = forward(state, np.zeros((1, n_features), dtype=np.float32))
    except (ValueError, KeyError) as exc:
        raise _Corrupt(f"{directory}: inconsistent network weights ({exc}).") from None
    if out.shape[1] != manifest["n_bits"]:
        raise _Corrupt(f"{directory}: the weights give {out.shape[1]} bits, not n_bits.")
    encoder.module_state_ = state
    if "anchors.values" in state:  # smoothed codes (n_anchors)
        encoder.n_anchors_ = int(state["anchors.values"].shape[0])
    encoder.hidden_layer_sizes_ = tuple(manifest["hidden_layer_sizes"])
    teacher = manifest.get("teacher_temperature")  # absent from older files
    if teacher is not None:
        if isinstance(teacher, bool) or not isinstance(teacher, (int, float)) or teacher <= 0:
            raise _Corrupt(f"{directory}: teacher_temperature {teacher!r} is not a temperature.")
        encoder.teacher_temperature_ = float(teacher)
    encoder.n_features_in_ = n_features
    if manifest.get("feature_names_in") is not None:
        encoder.feature_names_in_ = np.asarray(manifest["feature_names_in"], dtype=object)
    return encoder


def load_encoder(path, *, verify=False):
    """Load an encoder saved by :func:`save_encoder` (no torch, no pickle).

    Parameters
    ----------
    path : str or path-like
        The directory.
    verify : bool, default=False
        Check every file's SHA-256 as well as its size.

    Returns
    -------
    encoder : BinaryHashEncoder, SimHash or PCAITQ
        The class saved. A BinaryHashEncoder is fitted (``module_state_``,
        ``hidden_layer_sizes_``, ``n_features_in_``) without ``net_`` or
        ``history_``: it encodes with the numpy forward pass.
    """
    manifest = _read_manifest(path, _ENCODER_FORMATS)
    with _manifest_fields(path):
        _check_files(path, manifest.get("files"), verify)
    return _encoder_from(path, manifest)


def load_index(path, *, verify=False, mmap=True, cls=None):
    """Load a :class:`~skhash.HashIndex` saved by :func:`save_index`.

    See :meth:`HashIndex.load <skhash.HashIndex.load>`; ``cls`` is the class to
    build (a subclass of ``HashIndex``; ``HashIndex`` if None).
    """
    from ._index import HashIndex

    cls = HashIndex if cls is None else cls

    path = Path(path)
    manifest = _read_manifest(path, _INDEX_FORMAT)
    # only the reading is wrapped: an error while building the index is not the file's
    with _manifest_fields(path):
        fields = _index_fields(path, manifest, verify, mmap)
    return _index_from(path, cls, **fields)


def _index_fields(path, manifest, verify, mmap):
    """Everything a saved index holds, read and checked against its manifest."""
    _check_files(path, manifest.get("files"), verify)
    encoder_manifest = _read_manifest(path / "encoder", _ENCODER_FORMATS)
    encoder = _encoder_from(path / "encoder", encoder_manifest)

    n_items, n_bits = manifest["n_items"], manifest["n_bits"]
    # the codes' length: at most the encoder's (a prefix), and their bits past it zero
    # (checked below): another would encode queries shorter or longer than the stored
    # codes, wrong distances rather than an error (prefix_bits may have been set after fit)
    if not _is_int(n_bits) or not 1 <= n_bits <= encoder_manifest["n_bits"]:
        raise _Corrupt(
            f"{path}: n_bits {n_bits!r} is not the length of a prefix of the encoder's "
            f"{encoder_manifest['n_bits']}-bit codes."
        )
    if manifest["n_features_in"] != encoder_manifest["n_features_in"]:
        raise _Corrupt(
            f"{path}: n_features_in {manifest['n_features_in']!r} is not the encoder's "
            f"{encoder_manifest['n_features_in']!r}."
        )
    ids = _load_npy(path / "ids.npy")
    codes = _load_npy(path / "codes.npy")
    if ids.dtype != np.int64 or ids.shape != (n_items,) or np.any(np.diff(ids) <= 0):
        raise _Corrupt(f"{path}/ids.npy: expected {n_items} increasing int64 ids.")
    if codes.dtype != np.uint8 or codes.shape != (n_items, -(-n_bits // 8)):
        raise _Corrupt(f"{path}/codes.npy: expected ({n_items}, {-(-n_bits // 8)}) uint8.")
    padding = np.uint8((1 << (-n_bits % 8)) - 1)
    if n_items and np.any(codes[:, -1] & padding):
        raise _Corrupt(
            f"{path}/codes.npy has bits set past n_bits {n_bits} (np.packbits pads with "
            "zeros): n_bits or the codes are damaged."
        )
    vectors = None
    if manifest.get("vectors_dtype") not in (None, "float16", "float32", "int8"):
        raise _Corrupt(f"{path}: unknown vectors_dtype {manifest['vectors_dtype']!r}.")
    if manifest.get("vectors_dtype") is not None:
        vectors = _load_npy(path / "vectors.npy", mmap=mmap)
        if str(vectors.dtype) != manifest["vectors_dtype"] or vectors.shape != (
            n_items,
            manifest["n_features_in"],
        ):
            raise _Corrupt(f"{path}/vectors.npy: shape or dtype differs from the manifest.")

    scale = manifest.get("vector_scale")
    if manifest.get("vectors_dtype") == "int8" and not (
        isinstance(scale, int | float)
        and not isinstance(scale, bool)
        and math.isfinite(scale)
        and scale > 0
    ):
        raise _Corrupt(f"{path}: vector_scale {scale!r} of the int8 vectors is not a scale.")
    if not isinstance(manifest["encoder"]["frozen"], bool):
        raise _Corrupt(f"{path}: encoder.frozen {manifest['encoder']['frozen']!r} is not a bool.")
    # an index saved before a parameter existed has its default (e.g. prefix_bits)
    params = {k: manifest["params"][k] for k in _INDEX_PARAMS if k in manifest["params"]}
    names = manifest.get("feature_names_in")
    if names is not None and (
        not isinstance(names, list) or len(names) != manifest["n_features_in"]
    ):
        raise _Corrupt(
            f"{path}: feature_names_in does not name {manifest['n_features_in']} features."
        )
    return {
        "encoder": encoder,
        "frozen": manifest["encoder"]["frozen"],
        "param_is_none": manifest["encoder"].get("param_is_none"),  # absent from older files
        "params": params,
        "ids": ids,
        "codes": codes,
        "vectors": vectors,
        "n_bits": n_bits,
        "n_features_in": manifest["n_features_in"],
        "feature_names_in": None if names is None else np.asarray(names, dtype=object),
        "vectors_dtype": manifest.get("vectors_dtype"),
        "vector_scale": manifest.get("vector_scale"),
    }


def _index_from(
    path,
    cls,
    *,
    encoder,
    frozen,
    param_is_none,
    params,
    ids,
    codes,
    vectors,
    n_bits,
    n_features_in,
    feature_names_in,
    vectors_dtype,
    vector_scale,
):
    """The index ``cls`` of the fields :func:`_index_fields` read."""
    from sklearn.frozen import FrozenEstimator

    from ._index import _linear_state

    if frozen:
        fitted = FrozenEstimator(encoder)
        param_encoder = fitted
    else:
        fitted = encoder
        param_encoder = type(encoder)(**encoder.get_params(deep=False))
        if param_is_none:
            param_encoder = None
    try:
        index = cls(encoder=param_encoder, **params)
    except TypeError as exc:
        raise ValueError(f"{path}: the saved index parameters do not fit ({exc}).") from None
    index.encoder_ = fitted
    index._network_state = getattr(encoder, "module_state_", None)
    index._linear_state = _linear_state(encoder)
    index.n_bits_ = n_bits
    index.n_features_in_ = n_features_in
    if feature_names_in is not None:
        index.feature_names_in_ = feature_names_in
    index.rescore_ = vectors_dtype  # the storage, whatever rescore says
    index.vector_scale_ = vector_scale
    index._state = index._make_state(ids, codes, vectors)
    return index
