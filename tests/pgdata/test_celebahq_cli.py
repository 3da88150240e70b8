"""pgdata create_celebahq end to end, and its handling of bad input.

Oracle: the fixture's expected.json (per-resolution sha256 of what NVIDIA's original tool wrote) and
image_list.txt md5s. The bad-input tests work on small copies of the fixture in tmp_path, rearranged
(rows renumbered, tokens moved between zips) so that each case costs at most a couple of images.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pgdata.celebahq.deltas import member_name
from pgdata.cli.app import app
from pgdata.formats import open_dataset
from tests.conftest import require_fixture

SYNTHETIC_000001_MD5_OPTION = "--celeba_000001_md5"


def _fixture() -> tuple[Path, dict]:
    root = require_fixture("celebahq")
    return root, json.loads((root / "expected.json").read_text())


def _invoke(*args: str):
    result = CliRunner().invoke(app, [str(arg) for arg in args])
    return result


def _mini(tmp_path: Path, rows: list[int], *, token_edits: dict | None = None, list_edits: dict | None = None,
          jpeg_edits: dict | None = None) -> tuple[Path, Path, list[str]]:
    """A CelebA + delta folder holding the given fixture rows, renumbered 0..n-1 (zip deltas00000.zip)."""
    root, expected = _fixture()
    celeba, delta = tmp_path / "celeba", tmp_path / "deltas"
    (celeba / "img_celeba").mkdir(parents=True)
    shutil.copytree(root / "Anno", celeba / "Anno")
    delta.mkdir()
    lines = (root / "deltas" / "image_list.txt").read_text().splitlines()
    header, table = lines[0], [line.split() for line in lines[1:]]
    files = ["000001.jpg"] + [table[idx][2] for idx in rows]
    for name in files:
        data = (root / "img_celeba" / name).read_bytes()
        if jpeg_edits and name in jpeg_edits:
            data = jpeg_edits[name](data)
        (celeba / "img_celeba" / name).write_bytes(data)
    out_lines = [header]
    with zipfile.ZipFile(root / "deltas" / "deltas00000.zip") as source, \
            zipfile.ZipFile(delta / "deltas00000.zip", "w") as target:
        for new, idx in enumerate(rows):
            fields = list(table[idx])
            fields[0] = str(new)
            for column, value in (list_edits or {}).get(new, {}).items():
                fields[column] = value
            out_lines.append("  ".join(fields))
            token = source.read(member_name(idx))
            if token_edits and new in token_edits:
                token = token_edits[new](token)
            target.writestr(member_name(new), token)
    (delta / "image_list.txt").write_text("\n".join(out_lines) + "\n")
    return celeba, delta, [SYNTHETIC_000001_MD5_OPTION, expected["celeba_000001_libjpeg8d_md5"]]


def _sha256_per_resolution(path: Path) -> dict[str, str]:
    result = {}
    with open_dataset(path) as reader:
        for resolution in reader.resolutions:
            digest = hashlib.sha256()
            for batch in reader.iter_batches(resolution, batch_size=8):
                digest.update(batch.tobytes())
            result["r%02d" % (resolution.bit_length() - 1)] = digest.hexdigest()
    return result


@pytest.mark.slow
def test_fixture_end_to_end_matches_the_original(tmp_path):
    root, expected = _fixture()
    job = expected["jobs"]["celebahq"]
    out = tmp_path / "celebahq"
    result = _invoke("create_celebahq", out, root, root / "deltas", "--subset", "--quiet",
                     SYNTHETIC_000001_MD5_OPTION, expected["celeba_000001_libjpeg8d_md5"])
    assert result.exit_code == 0, result.output
    with open_dataset(out) as reader:
        assert reader.num_images == job["num_images"] and reader.channels == 3
        records = [hashlib.sha256(reader.image(k).tobytes()).hexdigest() for k in range(reader.num_images)]
    assert records == job["top_resolution_record_sha256"]
    got = _sha256_per_resolution(out)
    assert got == {key: value["sha256"] for key, value in job["resolutions"].items()}


def test_counts_are_enforced_without_subset(tmp_path):
    celeba, delta, md5_option = _mini(tmp_path, [5])
    result = _invoke("create_celebahq", tmp_path / "out", celeba, delta, *md5_option)
    assert result.exit_code != 0
    assert "202599" in str(result.exception) and "--subset" in str(result.exception)


def test_missing_and_extra_zips(tmp_path):
    celeba, delta, md5_option = _mini(tmp_path, [5])
    shutil.copy(delta / "deltas00000.zip", delta / "deltas01000.zip")
    result = _invoke("create_celebahq", tmp_path / "out", celeba, delta, "--subset", *md5_option)
    assert result.exit_code != 0 and "deltas01000.zip" in str(result.exception)
    (delta / "deltas01000.zip").unlink()
    (delta / "deltas00000.zip").unlink()
    result = _invoke("create_celebahq", tmp_path / "out", celeba, delta, "--subset", *md5_option)
    assert result.exit_code != 0 and "no image_list.txt row has its zip" in str(result.exception)


def test_aligned_celeba_is_refused(tmp_path):
    celeba, delta, md5_option = _mini(tmp_path, [5])
    (celeba / "img_celeba").rename(celeba / "img_align_celeba")
    result = _invoke("create_celebahq", tmp_path / "out", celeba, delta, "--subset", *md5_option)
    assert result.exit_code != 0 and "aligned" in str(result.exception)


def test_reference_jpeg_md5_is_checked(tmp_path):
    """Without the fixture's md5, the real CelebA's value applies and the synthetic 000001.jpg fails."""
    celeba, delta, _ = _mini(tmp_path, [5])
    result = _invoke("create_celebahq", tmp_path / "out", celeba, delta, "--subset")
    assert result.exit_code != 0
    assert "000001.jpg" in str(result.exception) and "not CelebA's in-the-wild" in str(result.exception)


def test_corrupt_zip(tmp_path):
    celeba, delta, md5_option = _mini(tmp_path, [5])
    data = bytearray((delta / "deltas00000.zip").read_bytes())
    data[40:200] = bytes(160)  # inside the member's data: CRC or decompression fails
    (delta / "deltas00000.zip").write_bytes(bytes(data))
    result = _invoke("create_celebahq", tmp_path / "out", celeba, delta, "--subset", "--quiet", *md5_option)
    assert result.exit_code != 0 and "corrupt" in str(result.exception)
    assert not (tmp_path / "out").exists()


def test_keep_going_reports_every_failure_with_its_stage(tmp_path):
    """Rows: 0 wrong proc_md5, 1 truncated delta, 2 JPEG not the official file, 3 wrong final_md5."""
    celeba, delta, md5_option = _mini(
        tmp_path, [5, 4, 2, 1],
        list_edits={0: {3: "0" * 32}, 3: {4: "f" * 32}},
        token_edits={1: lambda token: token[: len(token) // 2]},
        jpeg_edits={"000008.jpg": lambda data: data[:-2] + b"\x00" + data[-1:]})
    out, report = tmp_path / "out", tmp_path / "failures.json"
    result = _invoke("create_celebahq", out, celeba, delta, "--subset", "--quiet", "--keep_going",
                     "--report", report, "--num_threads", "2", *md5_option)
    assert result.exit_code != 0
    assert "4 of 4 image(s) failed" in str(result.exception)
    assert not out.exists()  # a dataset with failures is never completed
    failures = {entry["idx"]: entry for entry in json.loads(report.read_text())["failures"]}
    assert {idx: entry["stage"] for idx, entry in failures.items()} == {0: "proc", 1: "token", 2: "key", 3: "final"}
    assert "truncated" in failures[1]["message"]
    assert "InvalidToken" in failures[2]["message"] and "differs from the official" in failures[2]["message"]


def test_first_failure_stops_without_keep_going(tmp_path):
    celeba, delta, md5_option = _mini(tmp_path, [5], token_edits={0: lambda token: token[:100]})
    result = _invoke("create_celebahq", tmp_path / "out", celeba, delta, "--subset", "--quiet", *md5_option)
    assert result.exit_code != 0
    assert "idx 0 (000002.jpg" in str(result.exception) and "token" in str(result.exception)


def test_two_image_build_and_resume_order(tmp_path):
    """A real build of two records (fixture md5s checked inside), and iter_chunks(start) skipping work."""
    from pgdata.sources.celebahq import CelebAHQSource

    celeba, delta, md5_option = _mini(tmp_path, [5, 4])
    out = tmp_path / "out"
    result = _invoke("create_celebahq", out, celeba, delta, "--subset", "--quiet", *md5_option)
    assert result.exit_code == 0, result.output
    source = CelebAHQSource(celeba, delta, subset=True, reference_md5=md5_option[1], workers=1)
    assert [task.idx for task in source.tasks(1)] == [task.idx for task in source.tasks(0)][1:]
    chunks = list(source.iter_chunks(1))
    with open_dataset(out) as reader:
        assert reader.num_images == 2
        assert len(chunks) == 1 and (chunks[0][0] == reader.image(1)).all()
