"""create_celebahq interrupted partway and resumed: the result is byte-identical to an uninterrupted build.

Shards are made tiny (pgshards.MAX_SAMPLES_PER_SHARD monkeypatched) so that a few fixture images fill
several shards at every resolution; the interruption is a KeyboardInterrupt raised by the source after
some records, as a Ctrl-C would. Oracle: the uninterrupted build (same code, no resume), file for file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from pgdata.formats import open_dataset
from pgdata.formats.pgshards import layout as pgshards
from pgdata.sources.celebahq import CelebAHQSource
from tests.pgdata.test_celebahq_cli import _fixture, _invoke, _mini

# Fixture rows without padding (under a second each), and every row for the slow variant.
CHEAP_ROWS = [5, 4, 7, 15, 2]


def _file_digests(root: Path) -> dict[str, str]:
    return {str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(root.rglob("*")) if path.is_file()}


def _interrupt_after(monkeypatch, records: int, starts: list[int]) -> None:
    original = CelebAHQSource.iter_chunks

    def iter_chunks(self, start=0):
        starts.append(start)
        for count, chunk in enumerate(original(self, start)):
            if count == records:
                raise KeyboardInterrupt
            yield chunk

    monkeypatch.setattr(CelebAHQSource, "iter_chunks", iter_chunks)


def _resume_matches_uninterrupted(tmp_path, monkeypatch, celeba, delta, options, shard, stop_after):
    monkeypatch.setattr(pgshards, "MAX_SAMPLES_PER_SHARD", shard)
    reference = tmp_path / "reference"
    result = _invoke("create_celebahq", reference, celeba, delta, *options)
    assert result.exit_code == 0, result.output
    with open_dataset(reference) as reader:
        count = reader.num_images
        assert count > 2 * shard  # at least three shards at every resolution
        assert len(list((reference / pgshards.level_dir(4)).glob("*.tar"))) >= 3

    out = tmp_path / "out"
    starts: list[int] = []
    with monkeypatch.context() as patch:
        _interrupt_after(patch, stop_after, starts)
        result = _invoke("create_celebahq", out, celeba, delta, *options)
    assert result.exit_code != 0 and not out.exists()  # nothing complete after the interruption
    partial = out.with_name(out.name + ".partial")
    assert any(partial.rglob("*.tar"))  # complete shards kept for the resume

    _interrupt_after(monkeypatch, count + 1, starts)  # counts the starts only
    result = _invoke("create_celebahq", out, celeba, delta, *options, "--resume")
    assert result.exit_code == 0, result.output
    assert starts[0] == 0 and 0 < starts[1] <= stop_after  # the resumed run skipped finished records
    assert not partial.exists()
    assert _file_digests(out) == _file_digests(reference)


def test_resume_after_interruption_gives_identical_files(tmp_path, monkeypatch):
    """Five cheap images, two per shard, interrupted after three records."""
    celeba, delta, md5_option = _mini(tmp_path, CHEAP_ROWS)
    _resume_matches_uninterrupted(tmp_path, monkeypatch, celeba, delta, ["--subset", "--quiet", *md5_option],
                                  shard=2, stop_after=3)


@pytest.mark.slow
def test_resume_of_the_whole_fixture_gives_identical_files(tmp_path, monkeypatch):
    """All 19 fixture images (padded ones included), four per shard, interrupted after nine records."""
    root, expected = _fixture()
    options = ["--subset", "--quiet", "--celeba_000001_md5", expected["celeba_000001_libjpeg8d_md5"]]
    _resume_matches_uninterrupted(tmp_path, monkeypatch, root, root / "deltas", options, shard=4, stop_after=9)
