"""Import of NVIDIA's TensorFlow pickles, checked against the outputs the original code produced (tf_networks)."""

from __future__ import annotations

import json
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from pgtrain.checkpoint import build_networks, load_snapshot, save_snapshot
from pgtrain.errors import PgtrainError
from pgtrain.importers.tf_pickle import import_tf_pickle, read_tf_pickle
from tests.conftest import require_fixture

ATOL = 1e-4  # float32 port vs the recorded TF float32 outputs




def _manifest() -> dict:
    return json.loads(require_fixture("tf_networks", "manifest.json").read_text())


def _config_names() -> list[str]:
    try:
        return sorted(_manifest()["configs"])
    except BaseException:  # fixtures absent: one placeholder case that skips
        return ["<fixtures absent>"]


def fixture_inputs_as_files(name: str, tmp_path: Path) -> tuple[dict, list[str]]:
    """The fixture's arrays, with its latents saved as z.npy and its labels (if any) as y.npy; the extra
    `generate` arguments that pass the labels."""
    data = np.load(require_fixture("tf_networks", f"{name}.npz"))
    np.save(tmp_path / "z.npy", data["latents"])
    if "labels" not in data.files:
        return data, []
    np.save(tmp_path / "y.npy", data["labels"])
    return data, ["--labels", str(tmp_path / "y.npy")]


def _import_config(name: str, tmp_path: Path):
    pkl = require_fixture("tf_networks", f"{name}.pkl")
    out = save_snapshot(tmp_path / f"{name}.pt", **import_tf_pickle(pkl))
    snapshot = load_snapshot(out)
    return snapshot, build_networks(snapshot)


@pytest.mark.parametrize("name", _config_names())
def test_imported_networks_reproduce_the_original_outputs(name: str, tmp_path: Path) -> None:
    config = _manifest()["configs"].get(name)
    if config is None:
        pytest.skip("tf_networks fixtures absent")
    snapshot, (G, D, Gs) = _import_config(name, tmp_path)
    for role in ("G", "D"):  # the pickle's static_kwargs are honoured
        for key, value in config[f"{role}_static_kwargs"].items():
            assert snapshot.network_kwargs[role][key] == value
    data = np.load(require_fixture("tf_networks", f"{name}.npz"))
    latents = torch.from_numpy(data["latents"])
    labels = torch.from_numpy(data["labels"]) if "labels" in data.files else None
    reals = torch.from_numpy(data["D_images_in"])
    worst = {}
    with torch.no_grad():
        for index, lod in enumerate(data["lods"].tolist()):
            scores, label_logits = D(reals, lod)
            results = {"G_images": G(latents, labels, lod), "Gs_images": Gs(latents, labels, lod),
                       "D_scores": scores}
            if "D_labels" in data.files:
                results["D_labels"] = label_logits
            for key, value in results.items():
                expected = data[key][index]
                assert value.shape == expected.shape, (key, lod)
                if expected.size == 0:
                    continue
                worst[key] = max(worst.get(key, 0.0), float(np.abs(value.numpy() - expected).max()))
    assert all(error < ATOL for error in worst.values()), worst


@pytest.mark.parametrize("name", _config_names())
def test_every_variable_is_mapped(name: str) -> None:
    config = _manifest()["configs"].get(name)
    if config is None:
        pytest.skip("tf_networks fixtures absent")
    networks = read_tf_pickle(require_fixture("tf_networks", f"{name}.pkl"))
    for network in networks:
        listed = {var: shape for var, shape in config["variables"][network.name]}
        assert {var: list(value.shape) for var, value in network.variables.items()} == listed
    converted = import_tf_pickle(require_fixture("tf_networks", f"{name}.pkl"))
    for role in ("G", "D", "Gs"):
        count = sum(t.numel() for t in converted[f"{role}_state"].values())
        assert count == config["trainable_params"][role]
    assert not torch.equal(converted["G_state"]["to_rgb.0.weight"], converted["Gs_state"]["to_rgb.0.weight"])


# --- crafted pickles: a fake `tfutil` module lets the test write tfutil.Network objects ---------------------------

class _Network:
    def __init__(self, state: dict) -> None:
        self.state = state

    def __getstate__(self) -> dict:
        return self.state

    def __setstate__(self, state: dict) -> None:
        self.state = state


@pytest.fixture()
def fake_tfutil(monkeypatch: pytest.MonkeyPatch):
    module = types.ModuleType("tfutil")
    _Network.__module__, _Network.__qualname__ = "tfutil", "Network"
    module.Network = _Network
    monkeypatch.setitem(sys.modules, "tfutil", module)
    return _Network


def _write(path: Path, networks) -> Path:
    path.write_bytes(pickle.dumps(tuple(networks), protocol=4))
    return path


def _fixture_states(name: str) -> list[dict]:
    networks = read_tf_pickle(require_fixture("tf_networks", f"{name}.pkl"))
    return [{"version": 2, "name": n.name, "static_kwargs": dict(n.static_kwargs), "build_module_src": "x = 1",
             "build_func_name": n.build_func_name, "variables": list(n.variables.items())} for n in networks]


def test_malicious_reduce_is_refused_and_not_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            import os
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps((Evil(), 1, 2), protocol=4))
    with pytest.raises(PgtrainError) as error:
        import_tf_pickle(path)
    message = str(error.value)
    assert "\n" not in message and str(path) in message and "system" in message and "refusing" in message
    assert not marker.exists()


def test_cli_refuses_malicious_pickle_with_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture) -> None:
    from pgtrain.cli import main

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (eval, (f"open({str(marker)!r}, 'w')",))

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(Evil(), protocol=2))
    monkeypatch.setattr(sys, "argv", ["pgtrain", "import-tf", str(path), str(tmp_path / "out.pt")])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "eval'" in lines[0] and lines[0].startswith("pgtrain: error:")
    assert not marker.exists() and not (tmp_path / "out.pt").exists()


def test_other_classes_are_refused_even_inside_a_network(tmp_path: Path, fake_tfutil) -> None:
    states = _fixture_states("r32_fused")
    states[0]["static_kwargs"]["extra"] = torch.nn.Identity()  # any other class, here a torch module
    with pytest.raises(PgtrainError, match="torch.nn.modules.linear.Identity"):
        import_tf_pickle(_write(tmp_path / "x.pkl", [fake_tfutil(s) for s in states]))


def test_not_an_official_network(tmp_path: Path, fake_tfutil) -> None:
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps({"G": np.zeros(3)}, protocol=4))
    with pytest.raises(PgtrainError, match="not an official network pickle"):
        import_tf_pickle(plain)
    text = tmp_path / "text.pkl"
    text.write_text("hello")
    with pytest.raises(PgtrainError, match="not a network pickle"):
        import_tf_pickle(text)
    states = _fixture_states("r32_fused")
    truncated = tmp_path / "truncated.pkl"
    truncated.write_bytes(_write(tmp_path / "full.pkl", [fake_tfutil(s) for s in states]).read_bytes()[:5000])
    with pytest.raises(PgtrainError, match="truncated.pkl"):
        import_tf_pickle(truncated)
    states[1]["build_func_name"] = "D_resnet"
    with pytest.raises(PgtrainError, match="D_resnet"):
        import_tf_pickle(_write(tmp_path / "other.pkl", [fake_tfutil(s) for s in states]))
    with pytest.raises(PgtrainError, match="cannot read"):
        import_tf_pickle(tmp_path / "missing.pkl")


def test_variable_names_must_agree_with_static_kwargs(tmp_path: Path, fake_tfutil) -> None:
    states = _fixture_states("r32_fused")  # fused names (Conv0_up) but kwargs claiming non-fused
    for index in (0, 2):  # G and Gs
        states[index]["static_kwargs"]["fused_scale"] = False
    with pytest.raises(PgtrainError, match="do not match G_paper"):
        import_tf_pickle(_write(tmp_path / "x.pkl", [fake_tfutil(s) for s in states]))


def test_absent_kwargs_take_the_official_defaults_and_unknown_are_ignored(tmp_path: Path, fake_tfutil) -> None:
    states = _fixture_states("r32_gray")  # num_channels=1, resolution=32: the official defaults
    for state in states:
        del state["static_kwargs"]["num_channels"], state["static_kwargs"]["resolution"]
        state["static_kwargs"]["dtype"] = "float32"
    converted = import_tf_pickle(_write(tmp_path / "x.pkl", [fake_tfutil(s) for s in states]))
    assert converted["network_kwargs"]["G"]["num_channels"] == 1
    assert converted["network_kwargs"]["D"]["resolution"] == 32
    assert converted["metadata"]["ignored_static_kwargs"]["G"] == ["dtype"]


def test_cli_import_then_generate_reproduces_gs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pgtrain.cli import main

    names = [n for n in _config_names() if n != "<fixtures absent>"]
    if not names:
        pytest.skip("tf_networks fixtures absent")
    name = names[0]
    data, extra = fixture_inputs_as_files(name, tmp_path)
    lod = float(data["lods"][-2])
    for argv in (["import-tf", str(require_fixture("tf_networks", f"{name}.pkl")), str(tmp_path / "n.pt")],
                 ["generate", str(tmp_path / "n.pt"), "--latents", str(tmp_path / "z.npy"), *extra,
                  "--lod", str(lod), "--raw", str(tmp_path / "raw.npy")]):
        monkeypatch.setattr(sys, "argv", ["pgtrain", *argv])
        with pytest.raises(SystemExit) as exit_info:
            main()
        assert exit_info.value.code in (0, None)
    raw = np.load(tmp_path / "raw.npy")
    assert raw.dtype == np.float32
    np.testing.assert_allclose(raw, data["Gs_images"][-2], atol=ATOL, rtol=0)
    payload = torch.load(tmp_path / "n.pt", weights_only=True)
    assert payload["format"] == "pgtrain-snapshot/1"
