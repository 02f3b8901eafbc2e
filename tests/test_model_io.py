"""The JSON model file: exact round trip, and a one-line error for every kind of damage."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from fastlogit.model_io import FORMAT_VERSION, Model, ModelFileError, load_model, save_model


@pytest.fixture
def saved(tmp_path):
    model = Model(["glucose", "bmi", "age"], np.array([[0.1 + 0.2], [-1e-300], [2.0 ** -1074]]),
                  -8.123456789012345, training={"rows": 400, "cost": 0.47, "converged": False,
                                                "n_iter": np.int64(7)})
    path = tmp_path / "model.json"
    save_model(model, path)
    return model, path


def test_round_trip_is_exact(saved):
    model, path = saved
    loaded = load_model(path)
    assert loaded.features == model.features
    assert loaded.W.shape == (3, 1) and loaded.W.dtype == np.float64
    np.testing.assert_array_equal(loaded.W, model.W)  # bit for bit, subnormal included
    assert loaded.b == model.b
    assert loaded.dtype == "float64"
    # save_model records which fastlogit wrote the file.
    import fastlogit
    assert loaded.training == {"rows": 400, "cost": 0.47, "converged": False, "n_iter": 7,
                               "fastlogit_version": fastlogit.__version__}
    document = json.loads(path.read_text())
    assert document["format"] == "fastlogit-model"
    assert document["format_version"] == FORMAT_VERSION


def test_boundary_of_the_textbook_model():
    assert Model(["glucose"], [[0.042]], -5.66).boundary() == pytest.approx(134.7619, abs=1e-4)
    with pytest.raises(ValueError, match="one-feature"):
        Model(["a", "b"], [[1.0], [2.0]], 0.0).boundary()


def test_save_refuses_non_finite_and_leaves_nothing(tmp_path):
    with pytest.raises(ModelFileError, match="W holds a non-finite weight"):
        save_model(Model(["a"], [[np.nan]], 0.0), tmp_path / "m.json")
    with pytest.raises(ModelFileError, match="b must be a finite number"):
        save_model(Model(["a"], [[1.0]], np.inf), tmp_path / "m.json")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(OSError):
        save_model(Model(["a"], [[1.0]], 0.0), tmp_path / "missing" / "m.json")


def test_features_must_match_W():
    with pytest.raises(ValueError, match="features has 2 names but W has 1 weights"):
        Model(["a", "b"], [[1.0]], 0.0)


def _damage(document: dict, **changes) -> dict:
    damaged = dict(document)
    for key, value in changes.items():
        if value is KeyError:
            damaged.pop(key)
        else:
            damaged[key] = value
    return damaged


@pytest.mark.parametrize("changes, message", [
    ({"format": "sklearn"}, "not a fastlogit model"),
    ({"format": KeyError}, "not a fastlogit model"),
    ({"format_version": "1"}, "format_version must be an integer"),
    ({"format_version": 2}, "format_version 2 is newer than this fastlogit reads (1)"),
    ({"format_version": 0}, "format_version must be >= 1"),
    ({"features": []}, "features must be a non-empty list"),
    ({"features": ["glucose", 3, "age"]}, "features must be a non-empty list"),
    ({"features": ["glucose", "glucose", "age"]}, "duplicate names: glucose"),
    ({"W": [1.0, 2.0]}, "W has 2 weights but features has 3 names"),
    ({"W": [1.0, "2", 3.0]}, "W must be a list of numbers"),
    ({"W": [1.0, True, 3.0]}, "W must be a list of numbers"),
    ({"W": KeyError}, "W must be a list of numbers"),
    ({"b": None}, "b must be a finite number"),
    ({"b": KeyError}, "b must be a finite number"),
    ({"dtype": "float16"}, "dtype must be one of float32, float64"),
    ({"training": []}, "training must be a JSON object"),
    ({"training": {"rows": -1}}, "training.rows must be a non-negative integer"),
    ({"training": {"cost": "low"}}, "training.cost must be a number or null"),
    ({"training": {"converged": "yes"}}, "training.converged must be true, false or null"),
])
def test_load_rejects_damaged_fields(saved, changes, message):
    _, path = saved
    document = _damage(json.loads(path.read_text()), **changes)
    path.write_text(json.dumps(document))
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    text = str(info.value)
    assert message in text
    assert "\n" not in text and str(path) in text


@pytest.mark.parametrize("content, message", [
    (b"", "is empty"),
    (b"   \n", "is empty"),
    (b'{"format": "fastlogit-model", "W": [1.0', "is not valid JSON (line 1"),
    (b'{"format": "fastlogit-model", "b": NaN}', "is not valid JSON"),
    (b"[1, 2, 3]", "not a fastlogit model"),
    (b'{"format": "fastlogit-model", "format_version": 1, "features": ["a"], "W": [1], "b": 1e400}',
     "b must be a finite number"),
    (b'{"format": "fastlogit-model", "format_version": 1, "features": ["a"], "W": [1e999], "b": 0}',
     "W holds a non-finite weight"),
    (b"\xff\xfe\x00binary", "not a text (UTF-8 JSON) file"),
])
def test_load_rejects_damaged_files(tmp_path, content, message):
    path = tmp_path / "m.json"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match=re.escape(message)):
        load_model(path)


def test_load_missing_and_folder(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model(tmp_path / "nope.json")
    with pytest.raises(ModelFileError, match="is a folder"):
        load_model(tmp_path)
