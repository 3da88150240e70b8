"""tools/make_celebahq_deltas.py round trip: deltas made for chosen targets, then create_celebahq rebuilds
exactly those targets (in the original's record order), and cryptography's Fernet accepts the tokens."""

from __future__ import annotations

import json
import shutil

import numpy as np
from typer.testing import CliRunner

from pgdata.celebahq import deltas
from pgdata.celebahq.inputs import read_image_list, read_landmarks
from pgdata.celebahq.pipeline import process_image
from pgdata.cli.app import app
from pgdata.formats import open_dataset
from pgdata.jpeg import decode_jpeg_libjpeg8d
from pgdata.sources.common import shuffled_order
from tests.conftest import REPO_ROOT, load_module, require_fixture

ROWS = [5, 4]  # fixture idx of cheap source photos


def _tool():
    return load_module(REPO_ROOT / "tools" / "make_celebahq_deltas.py", "make_celebahq_deltas")


def test_round_trip_reproduces_the_targets(tmp_path):
    root = require_fixture("celebahq")
    expected = json.loads((root / "expected.json").read_text())
    fixture_rows = read_image_list(root / "deltas" / "image_list.txt")
    landmarks = read_landmarks(root / "Anno" / "list_landmarks_celeba.txt", {r.orig_idx for r in fixture_rows})
    celeba = tmp_path / "celeba"
    (celeba / "img_celeba").mkdir(parents=True)
    shutil.copytree(root / "Anno", celeba / "Anno")
    shutil.copy(root / "img_celeba" / "000001.jpg", celeba / "img_celeba")

    rng = np.random.default_rng(99)
    lines, targets = [], []
    for number, idx in enumerate(ROWS):
        row = fixture_rows[idx]
        shutil.copy(root / "img_celeba" / row.orig_file, celeba / "img_celeba")
        proc = process_image(decode_jpeg_libjpeg8d(root / "img_celeba" / row.orig_file), landmarks[row.orig_idx])
        # Perturb: noise everywhere plus values pushed past 0 / 255 so the delta must wrap.
        target = np.add(proc, rng.integers(-20, 21, proc.shape).astype(np.uint8), dtype=np.uint8)
        target[0, :8, :8] = 255
        target[1, :8, :8] = 0
        targets.append(target)
        np.save(tmp_path / f"target{number}.npy", target)
        lines.append(f"{row.orig_idx} {row.orig_file} target{number}.npy")
    (tmp_path / "rows.txt").write_text("\n".join(lines) + "\n")

    tool = _tool()
    out_deltas = tmp_path / "deltas"
    assert tool.main([str(out_deltas), str(celeba), str(tmp_path / "rows.txt"), "--timestamp", "1517443200",
                      "--quiet"]) == 0
    made = read_image_list(out_deltas / "image_list.txt")
    assert [r.final_md5 for r in made] == [deltas.md5_hex(t) for t in targets]

    # Deterministic with --timestamp, and a standard Fernet token.
    again = tmp_path / "again"
    tool.main([str(again), str(celeba), str(tmp_path / "rows.txt"), "--timestamp", "1517443200", "--quiet"])
    assert (again / "deltas00000.zip").read_bytes() == (out_deltas / "deltas00000.zip").read_bytes()
    from cryptography.fernet import Fernet

    jpeg = (celeba / "img_celeba" / made[0].orig_file).read_bytes()
    Fernet(deltas.derive_key(jpeg, made[0].orig_file)).decrypt(deltas.read_token(out_deltas, 0))

    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["create_celebahq", str(out), str(celeba), str(out_deltas), "--subset",
                                      "--quiet", "--celeba_000001_md5", expected["celeba_000001_libjpeg8d_md5"]])
    assert result.exit_code == 0, result.output
    order = shuffled_order(len(ROWS))
    with open_dataset(out) as reader:
        for record in range(len(ROWS)):
            assert np.array_equal(reader.image(record), targets[order[record]])
