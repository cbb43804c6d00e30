"""Model artefacts as data that cannot run code: compressed JSON with LightGBM's own text models.

A stored model used to be a joblib pickle, and unpickling can run any code the bytes name: one
edited database row, or a backup handed to the shop, would have run in every serving process.
An artefact is now a gzip-compressed JSON document (format 3): the trees as LightGBM's text model
(`model_to_string`, parsed by LightGBM's own C++ reader, which only builds trees), numbers as JSON
numbers (Python writes floats with `repr`, which reads back bit for bit; NaN and infinity as
Python's json module writes them), arrays as a dtype from
a short allow-list, a shape and a flat list. Reading one builds exactly the objects below and
nothing else, whatever the bytes say.

Each artefact's SHA-256 is recorded when its version is created and checked at every load, so a
row whose bytes changed is refused before they are parsed. `read_legacy` is the one way back
from the previous release's pickles (format 2), for `init`'s upgrade: an unpickler that may only
build the classes such a model is made of, so a payload that names anything else is refused.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import pickle
import zlib
from typing import Any

import lightgbm as lgb
import numpy as np

from diamond_model.data.drift import FeatureProfile, Profile
from diamond_model.enums import Inputs
from diamond_model.pricing.confidence import Domain
from diamond_model.pricing.intervals import Spread
from diamond_model.pricing.market import MarketIndex
from diamond_model.pricing.model import MODEL_FORMAT, PriceModel, PricingModel

# A decompressed artefact is a few megabytes (two regressors, four spread models); anything far
# larger is not one of ours, and is refused before it can fill the memory.
MAX_DECOMPRESSED = 256 * 1024 * 1024
DTYPES = frozenset({"float64", "float32", "int64", "int32", "int16", "int8", "bool"})
REGRESSOR_STATE = ("carat_slope_", "intercept_")


class ArtefactError(ValueError):
    """The bytes are not a model this release can serve; the message says why."""


def digest(blob: bytes) -> str:
    """The SHA-256 recorded beside an artefact and checked before it is read."""
    return hashlib.sha256(blob).hexdigest()


def _array(values: np.ndarray) -> dict[str, Any]:
    return {
        "dtype": str(values.dtype),
        "shape": list(values.shape),
        "data": values.ravel().tolist(),
    }


def _from_array(doc: dict[str, Any]) -> np.ndarray:
    dtype = doc["dtype"]
    if dtype not in DTYPES:
        raise ArtefactError(f"an array of type {dtype!r} is not part of a model")
    return np.asarray(doc["data"], dtype=dtype).reshape(doc["shape"])


def _booster(text: str) -> lgb.Booster:
    if not isinstance(text, str) or not text.startswith("tree\n"):
        raise ArtefactError("a tree model is not in LightGBM's text format")
    return lgb.Booster(model_str=text)


def _regressor(model: PriceModel) -> dict[str, Any]:
    params = model.get_params()
    params["features"] = list(params["features"])
    return {
        "params": params,
        "booster": model.booster_.model_to_string(),
        **{name: float(getattr(model, name)) for name in REGRESSOR_STATE},
    }


def _from_regressor(doc: dict[str, Any]) -> PriceModel:
    params = dict(doc["params"])
    allowed = set(PriceModel().get_params())
    if not set(params) <= allowed:
        raise ArtefactError(f"unknown regressor settings {sorted(set(params) - allowed)}")
    params["features"] = tuple(str(name) for name in params["features"])
    model = PriceModel(**params)
    model.booster_ = _booster(doc["booster"])
    for name in REGRESSOR_STATE:
        setattr(model, name, float(doc[name]))
    model.feature_names_in_ = np.asarray(params["features"], dtype=object)
    model.n_features_in_ = len(params["features"])
    return model


def _spread(spread: Spread) -> dict[str, Any]:
    return {
        "down": spread.down.model_to_string(),
        "up": spread.up.model_to_string(),
        "floor": float(spread.floor),
        "scores": _array(spread.scores),
    }


def _from_spread(doc: dict[str, Any]) -> Spread:
    return Spread(
        down=_booster(doc["down"]),
        up=_booster(doc["up"]),
        floor=float(doc["floor"]),
        scores=_from_array(doc["scores"]),
    )


def _profile(profile: Profile) -> dict[str, Any]:
    return {
        name: {
            "edges": None if feature.edges is None else _array(feature.edges),
            "categories": None if feature.categories is None else list(feature.categories),
            "shares": _array(feature.shares),
            "typical": feature.typical,
        }
        for name, feature in profile.features.items()
    }


def _from_profile(doc: dict[str, Any]) -> Profile:
    return Profile(
        features={
            str(name): FeatureProfile(
                edges=None if part["edges"] is None else _from_array(part["edges"]),
                categories=None
                if part["categories"] is None
                else tuple(str(c) for c in part["categories"]),
                shares=_from_array(part["shares"]),
                typical=str(part["typical"]),
            )
            for name, part in doc.items()
        }
    )


def to_document(model: PricingModel) -> dict[str, Any]:
    """The model as plain JSON values."""
    return {
        "format": MODEL_FORMAT,
        "full": _regressor(model.full),
        "reduced": _regressor(model.reduced),
        "spreads": {str(inputs): _spread(spread) for inputs, spread in model.spreads.items()},
        "domain": {
            "ranges": {name: list(bounds) for name, bounds in model.domain.ranges.items()},
            "support": _array(model.domain.support),
            "n": int(model.domain.n),
        },
        "market": {
            name: _array(getattr(model.market, name)) for name in ("months", "level", "se", "n")
        },
        "typical": {name: float(value) for name, value in model.typical.items()},
        "profile": _profile(model.profile),
        "typical_miss": float(model.typical_miss),
        "capacity": model.capacity,
        "n_train": int(model.n_train),
        "suspect_miss": float(model.suspect_miss),
    }


def from_document(doc: dict[str, Any]) -> PricingModel:
    """The model from `to_document`'s values; anything else is an ArtefactError."""
    if not isinstance(doc, dict) or doc.get("format") != MODEL_FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise ArtefactError(f"the artefact is of format {found}, not {MODEL_FORMAT}")
    try:
        return PricingModel(
            full=_from_regressor(doc["full"]),
            reduced=_from_regressor(doc["reduced"]),
            spreads={Inputs(key): _from_spread(part) for key, part in doc["spreads"].items()},
            domain=Domain(
                ranges={
                    str(name): (float(low), float(high))
                    for name, (low, high) in doc["domain"]["ranges"].items()
                },
                support=_from_array(doc["domain"]["support"]),
                n=int(doc["domain"]["n"]),
            ),
            market=MarketIndex(
                **{
                    name: _from_array(doc["market"][name])
                    for name in ("months", "level", "se", "n")
                }
            ),
            typical={str(name): float(value) for name, value in doc["typical"].items()},
            profile=_from_profile(doc["profile"]),
            typical_miss=float(doc["typical_miss"]),
            capacity=str(doc["capacity"]),
            n_train=int(doc["n_train"]),
            suspect_miss=float(doc.get("suspect_miss", 0.0)),  # 0: saved before it was measured
        )
    except ArtefactError:
        raise
    except (KeyError, TypeError, ValueError, lgb.basic.LightGBMError) as error:
        raise ArtefactError(f"the artefact does not describe a model: {error}") from error


def write(model: PricingModel) -> bytes:
    """The stored bytes of a model (gzip-compressed JSON)."""
    text = json.dumps(to_document(model), separators=(",", ":"))
    return gzip.compress(text.encode(), compresslevel=6, mtime=0)


def read(blob: bytes, expected_digest: str | None) -> PricingModel:
    """A model from its stored bytes, checked against the digest recorded with them."""
    if expected_digest is None:
        raise ArtefactError("no content hash was recorded for it")
    if digest(blob) != expected_digest:
        raise ArtefactError("its bytes do not match the hash recorded when it was created")
    if not blob.startswith(b"\x1f\x8b"):
        raise ArtefactError("it is not a gzip-compressed JSON model (an older pickle?)")
    try:
        decompressor = zlib.decompressobj(wbits=31)
        text = decompressor.decompress(blob, MAX_DECOMPRESSED)
        if decompressor.unconsumed_tail:
            raise ArtefactError(f"it decompresses to more than {MAX_DECOMPRESSED:,} bytes")
        doc = json.loads(text)
    except (zlib.error, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ArtefactError(f"it is not readable: {error}") from error
    return from_document(doc)


# ---- the previous release's pickles, for `init`'s one-time upgrade -----------------------------

# Everything a format-2 artefact (joblib.dump of a PricingModel) is built from, found by
# recording what the stored models of that release name. Nothing else can be called.
LEGACY_ALLOWED: frozenset[tuple[str, str]] = frozenset(
    {
        ("diamond_model.pricing.model", "PricingModel"),
        ("diamond_model.pricing.model", "PriceModel"),
        ("diamond_model.pricing.intervals", "Spread"),
        ("diamond_model.pricing.confidence", "Domain"),
        ("diamond_model.pricing.market", "MarketIndex"),
        ("diamond_model.data.drift", "Profile"),
        ("diamond_model.data.drift", "FeatureProfile"),
        ("diamond_model.enums", "Inputs"),
        ("lightgbm.basic", "Booster"),  # its state is a text model, parsed by LightGBM
        ("joblib.numpy_pickle", "NumpyArrayWrapper"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("collections", "OrderedDict"),
        ("collections", "defaultdict"),
    }
)
# The previous release kept the core in one folder: its pickles name the flat modules.
LEGACY_MODULES: dict[str, str] = {
    "diamond_model.model": "diamond_model.pricing.model",
    "diamond_model.intervals": "diamond_model.pricing.intervals",
    "diamond_model.confidence": "diamond_model.pricing.confidence",
    "diamond_model.market": "diamond_model.pricing.market",
    "diamond_model.drift": "diamond_model.data.drift",
    "diamond_model.kinds": "diamond_model.enums",
}


def read_legacy(blob: bytes) -> PricingModel:
    """A format-2 artefact (joblib pickle) read with an allow-list of classes: a pickle that
    names any other callable (os.system, eval, a module's function) is refused unread."""
    from joblib import numpy_pickle  # the format's own reader, restricted below

    class Restricted(numpy_pickle.NumpyUnpickler):  # type: ignore[misc]  # joblib: untyped
        def find_class(self, module: str, name: str) -> Any:
            module = LEGACY_MODULES.get(module, module)
            if (module, name) not in LEGACY_ALLOWED:
                raise ArtefactError(f"the pickle names {module}.{name}, which no model contains")
            return super().find_class(module, name)

    try:
        with numpy_pickle._validate_fileobject_and_memmap(io.BytesIO(blob), "", None) as (
            handle,
            _,
        ):
            model = Restricted("", handle, ensure_native_byte_order=True).load()
    except ArtefactError:
        raise
    except (pickle.UnpicklingError, EOFError, AttributeError, TypeError, ValueError) as error:
        raise ArtefactError(f"the pickle is not readable: {error}") from error
    if not isinstance(model, PricingModel):
        raise ArtefactError(f"the pickle holds a {type(model).__name__}, not a model")
    model.format = MODEL_FORMAT
    model._explainers = {}
    return model
