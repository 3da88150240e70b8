"""Dataset builds never destroy what pgdata did not write, never trust a stale partial build, and fail in one line.

Built from tiny raw inputs (a few PNGs for create_from_images, in-memory sources for the exporter), through the
console entry point `main()` where the promise is about what the user sees (one line, the exit status).
"""

from __future__ import annotations

import errno
import hashlib
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from pgdata import shard_writer
from pgdata.errors import PgdataError
from pgdata.exporter import REPLACED_MARKER, export_dataset, is_partial_build, old_path, partial_path
from pgdata.formats.pgshards import layout
from pgdata.sources.base import Source, SourceInfo
from tests.pgdata.test_exporter import ArraySource, random_images, tree_bytes


def snapshot(root: Path) -> dict[str, str]:
    """Every file (sha256) and folder under root: what "nothing touched" compares."""
    return {str(path.relative_to(root)): "folder" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(root.rglob("*"))}


def write_pngs(folder: Path, count: int, seed: int = 0) -> list[Path]:
    import PIL.Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = [folder / f"{index:03d}.png" for index in range(count)]
    for path in paths:
        PIL.Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(path)
    return paths


def run_main(monkeypatch, capsys, *args) -> tuple[int, list[str]]:
    """`pgdata ARGS` through the console entry point: (exit status, stderr lines)."""
    from pgdata.cli import main

    capsys.readouterr()
    monkeypatch.setattr(sys, "argv", ["pgdata", *(str(arg) for arg in args)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return exit_info.value.code, capsys.readouterr().err.strip().splitlines()


def assert_one_error_line(code: int, lines: list[str], *fragments: str) -> None:
    assert code == 1 and len(lines) == 1, lines
    assert lines[0].startswith("pgdata: error: ") and "Traceback" not in lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def build(tmp_path: Path, source: Source, name: str = "out", **kwargs) -> Path:
    return export_dataset(source, tmp_path / name, command="test", arguments={"k": 1}, quiet=True, **kwargs)


def from_images(out, image_dir, *more) -> list:
    return ["create_from_images", out, image_dir, "--shuffle", "0", "--quiet", *more]


# 1, 7: what --overwrite (or any build) may replace

@pytest.mark.parametrize("case", ["input itself", "parent of the input", "inside the input", "a plain folder",
                                  "current directory", "../cwd", "parent of the current directory", "a file",
                                  "a symbolic link"])
def test_output_that_is_not_ours_to_replace_is_refused_and_left_untouched(tmp_path, monkeypatch, capsys, case):
    images = tmp_path / "in" / "x"
    write_pngs(images, 3)
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "notes.txt").write_text("mine")
    (tmp_path / "file.bin").write_bytes(b"mine")
    (tmp_path / "link").symlink_to(tmp_path / "plain")
    work = tmp_path / "work"
    work.mkdir()
    (work / "keep.txt").write_text("mine")
    monkeypatch.chdir(work)
    out = {"input itself": images, "parent of the input": images.parent, "inside the input": images / "out",
           "a plain folder": tmp_path / "plain", "current directory": ".", "../cwd": "../work",
           "parent of the current directory": "..", "a file": tmp_path / "file.bin",
           "a symbolic link": tmp_path / "link"}[case]
    before = snapshot(tmp_path)
    code, lines = run_main(monkeypatch, capsys, *from_images(out, images, "--overwrite"))
    assert_one_error_line(code, lines)
    assert snapshot(tmp_path) == before


def test_overwrite_replaces_a_dataset_pgdata_wrote(tmp_path):
    out = build(tmp_path, ArraySource(random_images(5)))
    reference = tree_bytes(build(tmp_path, ArraySource(random_images(5, seed=9)), "reference"))
    build(tmp_path, ArraySource(random_images(5, seed=9)), overwrite=True)
    assert tree_bytes(out) == reference
    assert not partial_path(out).exists() and not old_path(out).exists()


def test_output_next_to_the_input_may_not_take_the_inputs_name(tmp_path, monkeypatch, capsys):
    """`create_from_images data data.partial`: the build folder would be the input."""
    images = tmp_path / "data.partial"
    write_pngs(images, 3)
    before = snapshot(tmp_path)
    code, lines = run_main(monkeypatch, capsys, *from_images(tmp_path / "data", images))
    assert_one_error_line(code, lines, "data.partial")
    assert snapshot(tmp_path) == before


# 2: OUT.partial and OUT.old are removed only when they carry pgdata's marker

@pytest.mark.parametrize("resume", [False, True])
def test_a_users_own_partial_folder_is_never_removed(tmp_path, monkeypatch, capsys, resume):
    images = tmp_path / "images"
    write_pngs(images, 3)
    mine = tmp_path / "out.partial"
    mine.mkdir()
    (mine / "thesis.tex").write_text("mine")
    (mine / "_build.json").write_text('{"format": "pgshards"}')  # looks like a build spec, has no marker
    before = snapshot(tmp_path)
    code, lines = run_main(monkeypatch, capsys, *from_images(tmp_path / "out", images),
                           *(["--resume"] if resume else []))
    assert_one_error_line(code, lines, str(mine), "move")
    assert snapshot(tmp_path) == before


def test_a_users_own_old_folder_is_never_removed_by_overwrite(tmp_path):
    out = build(tmp_path, ArraySource(random_images(5)))
    mine = old_path(out)
    mine.mkdir()
    (mine / "thesis.tex").write_text("mine")
    before = snapshot(tmp_path)
    with pytest.raises(PgdataError, match="out.old: .*move or rename it"):
        build(tmp_path, ArraySource(random_images(5, seed=9)), overwrite=True)
    assert snapshot(tmp_path) == before  # refused before building: no out.partial either


def test_a_dataset_named_like_an_old_folder_survives_unless_marked(tmp_path):
    """A pgdata dataset at OUT.old is someone's dataset, unless an interrupted --overwrite marked it."""
    out = build(tmp_path, ArraySource(random_images(5)))
    dataset = build(tmp_path, ArraySource(random_images(4, seed=3)), "out.old")
    with pytest.raises(PgdataError, match="out.old"):
        build(tmp_path, ArraySource(random_images(5, seed=9)), overwrite=True)
    assert dataset.exists()
    (dataset / REPLACED_MARKER).write_text("{}")  # as left by an --overwrite stopped before its cleanup
    build(tmp_path, ArraySource(random_images(5, seed=9)), overwrite=True)
    assert not dataset.exists() and out.exists()


def test_a_plain_build_replaces_its_own_interrupted_build(tmp_path):
    images = random_images(12)
    reference = tree_bytes(build(tmp_path, ArraySource(images), "reference"))
    with pytest.raises(KeyboardInterrupt):
        build(tmp_path, ArraySource(images, fail_after=7))
    assert is_partial_build(partial_path(tmp_path / "out"))
    assert tree_bytes(build(tmp_path, ArraySource(images))) == reference


# 3: a build that fails midway leaves the old dataset intact and says where things are

def disk_full_after(calls: int):
    """A ShardSetWriter._write that fails with ENOSPC after `calls` writes."""
    original = shard_writer.ShardSetWriter._write
    left = [calls]

    def write(writer, data):
        left[0] -= 1
        if left[0] < 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        original(writer, data)

    return write


def test_disk_full_during_overwrite_keeps_the_old_dataset_and_the_partial_build(tmp_path, monkeypatch):
    monkeypatch.setattr(layout, "MAX_SAMPLES_PER_SHARD", 4)
    images = random_images(20, resolution=8, seed=9)
    reference = tree_bytes(build(tmp_path, ArraySource(images, chunk=4), "reference"))
    out = build(tmp_path, ArraySource(random_images(6, resolution=8)))
    before = tree_bytes(out)
    with monkeypatch.context() as patch:
        patch.setattr(shard_writer.ShardSetWriter, "_write", disk_full_after(5))
        with pytest.raises(PgdataError) as error:
            build(tmp_path, ArraySource(images, chunk=4), overwrite=True)
    message = str(error.value)
    assert "No space left on device" in message and str(partial_path(out)) in message and "--resume" in message
    assert f"{out} is unchanged" in message and "\n" not in message
    assert tree_bytes(out) == before
    build(tmp_path, ArraySource(images, chunk=4), overwrite=True, resume=True)
    assert tree_bytes(out) == reference


def test_disk_full_is_one_line_from_the_command(tmp_path, monkeypatch, capsys):
    images = tmp_path / "images"
    write_pngs(images, 3)
    monkeypatch.setattr(shard_writer.ShardSetWriter, "_write", disk_full_after(0))
    code, lines = run_main(monkeypatch, capsys, *from_images(tmp_path / "out", images))
    assert_one_error_line(code, lines, "No space left on device", "out.partial")
    assert not (tmp_path / "out").exists()


def test_read_only_output_folder_is_one_line(tmp_path, monkeypatch, capsys):
    """As root a chmod does not stop writes, so the build folder's creation is made to fail as it would."""
    images = tmp_path / "images"
    write_pngs(images, 3)
    original = Path.mkdir

    def mkdir(self, *args, **kwargs):
        if self.name.endswith(".partial"):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    code, lines = run_main(monkeypatch, capsys, *from_images(tmp_path / "out", images))
    assert_one_error_line(code, lines, "Permission denied", "out.partial")


def test_failed_swap_puts_the_old_dataset_back(tmp_path, monkeypatch):
    out = build(tmp_path, ArraySource(random_images(5)))
    before = tree_bytes(out)
    original = Path.rename

    def rename(self, target):
        if self.name.endswith(".partial"):
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), str(self))
        return original(self, target)

    with monkeypatch.context() as patch:
        patch.setattr(Path, "rename", rename)
        with pytest.raises(PgdataError, match=r"complete in .*out.partial.*out is unchanged"):
            build(tmp_path, ArraySource(random_images(5, seed=9)), overwrite=True)
    assert tree_bytes(out) == before and not old_path(out).exists()
    reference = tree_bytes(build(tmp_path, ArraySource(random_images(5, seed=9)), "reference"))
    build(tmp_path, ArraySource(random_images(5, seed=9)), overwrite=True, resume=True)
    assert tree_bytes(out) == reference


# 4: --resume trusts neither changed inputs nor changed shards

def interrupt_image_folder_after(monkeypatch, records: int, starts: list[int]) -> None:
    """create_from_images stops (as on Ctrl-C) after `records` records, handed over one by one."""
    from pgdata.sources.images import ImageFolderSource

    original = ImageFolderSource.iter_chunks

    def iter_chunks(self, start=0):
        starts.append(start)
        index = start
        for chunk in original(self, start):
            for image in chunk:
                if index == records:
                    raise KeyboardInterrupt
                index += 1
                yield image[None]

    monkeypatch.setattr(ImageFolderSource, "iter_chunks", iter_chunks)


def test_resume_refuses_inputs_that_changed_since_the_interruption(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(layout, "MAX_SAMPLES_PER_SHARD", 2)
    images = tmp_path / "images"
    files = write_pngs(images, 8)
    out = tmp_path / "out"
    with monkeypatch.context() as patch:
        interrupt_image_folder_after(patch, 5, [])
        code, lines = run_main(monkeypatch, capsys, *from_images(out, images))
    assert code == 130 and any("--resume" in line for line in lines)
    write_pngs(tmp_path / "other", 8, seed=1)[1].replace(files[1])  # an image already in a kept shard
    before = snapshot(tmp_path)
    code, lines = run_main(monkeypatch, capsys, *from_images(out, images, "--resume"))
    assert_one_error_line(code, lines, str(files[1]), "without --resume")
    assert snapshot(tmp_path) == before


def test_resume_refuses_an_added_input_file(tmp_path, monkeypatch, capsys):
    images = tmp_path / "images"
    write_pngs(images, 6)
    out = tmp_path / "out"
    with monkeypatch.context() as patch:
        interrupt_image_folder_after(patch, 3, [])
        run_main(monkeypatch, capsys, *from_images(out, images))
    write_pngs(tmp_path / "other", 1, seed=2)[0].replace(images / "005b.png")
    code, lines = run_main(monkeypatch, capsys, *from_images(out, images, "--resume"))
    assert_one_error_line(code, lines, "005b.png", "added")


def test_resume_of_unchanged_inputs_gives_the_uninterrupted_bytes(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(layout, "MAX_SAMPLES_PER_SHARD", 2)
    images = tmp_path / "images"
    write_pngs(images, 8)
    assert run_main(monkeypatch, capsys, *from_images(tmp_path / "reference", images))[0] == 0
    starts: list[int] = []
    with monkeypatch.context() as patch:
        interrupt_image_folder_after(patch, 5, starts)
        run_main(monkeypatch, capsys, *from_images(tmp_path / "out", images))
    interrupt_image_folder_after(monkeypatch, 100, starts)
    assert run_main(monkeypatch, capsys, *from_images(tmp_path / "out", images, "--resume"))[0] == 0
    assert starts == [0, 4]  # the two complete shards of every resolution were kept
    assert tree_bytes(tmp_path / "out") == tree_bytes(tmp_path / "reference")


class StartRecorder(ArraySource):
    starts: list[int] = []

    def iter_chunks(self, start: int = 0):
        self.starts.append(start)
        yield from super().iter_chunks(start)


def test_resume_rewrites_a_kept_shard_whose_bytes_changed(tmp_path, monkeypatch):
    """A flipped byte inside an image leaves the tar valid and full: only the recorded sha256 shows it."""
    monkeypatch.setattr(layout, "MAX_SAMPLES_PER_SHARD", 4)
    images = random_images(20, resolution=8)
    reference = tree_bytes(build(tmp_path, ArraySource(images), "reference"))
    with pytest.raises(KeyboardInterrupt):
        build(tmp_path, ArraySource(images, chunk=4, fail_after=12))
    shard = partial_path(tmp_path / "out") / "r03" / "000001.tar"
    data = bytearray(shard.read_bytes())
    data[600] ^= 0xFF  # pixel data of the first sample
    shard.write_bytes(bytes(data))
    source = StartRecorder(images, chunk=4)
    source.starts = []
    build(tmp_path, source, resume=True)
    assert source.starts == [4]  # shards before the changed one are kept
    assert tree_bytes(tmp_path / "out") == reference


def test_input_changed_during_the_build_is_not_completed(tmp_path):
    listing = tmp_path / "inputs" / "list.txt"
    listing.parent.mkdir()
    listing.write_text("first")

    class ChangesItsInput(ArraySource):
        def iter_chunks(self, start=0):
            for number, chunk in enumerate(super().iter_chunks(start)):
                if number == 1:
                    listing.write_text("second, longer")
                yield chunk

    with pytest.raises(PgdataError, match="list.txt: size changed .* during the build"):
        build(tmp_path, ChangesItsInput(random_images(12), chunk=4), inputs={"listing": listing.parent})
    assert not (tmp_path / "out").exists() and not partial_path(tmp_path / "out").exists()


# 5: a dataset of no images is refused

class NothingDecodable(Source):
    info = SourceInfo("lsun-like", 3, 8, None)

    def iter_chunks(self, start: int = 0):
        return iter(())

    def warnings(self):
        return ["value 0 (key a): skipped: cannot identify image file"]


def test_a_build_of_no_images_is_refused(tmp_path):
    with pytest.raises(PgdataError, match="no images could be read .*cannot identify image file"):
        build(tmp_path, NothingDecodable())
    assert list(tmp_path.iterdir()) == []


def test_lsun_of_undecodable_values_is_one_line_and_no_dataset(tmp_path, monkeypatch, capsys):
    lmdb = pytest.importorskip("lmdb")
    pytest.importorskip("cv2")
    folder = tmp_path / "bedroom_lmdb"
    with lmdb.open(str(folder), map_size=2**20) as environment, environment.begin(write=True) as transaction:
        for key in (b"a", b"b", b"c"):
            transaction.put(key, b"not an image")
    code, lines = run_main(monkeypatch, capsys, "create_lsun", tmp_path / "out", folder, "--resolution", "8",
                           "--quiet")
    assert_one_error_line(code, lines, "no images could be read", str(folder))
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


# 6: Ctrl-C and kill -9 with worker processes

def test_ctrl_c_says_in_one_line_that_resume_finishes_the_build(tmp_path, monkeypatch, capsys):
    images = tmp_path / "images"
    write_pngs(images, 6)
    interrupt_image_folder_after(monkeypatch, 3, [])
    code, lines = run_main(monkeypatch, capsys, *from_images(tmp_path / "out", images))
    assert code == 130 and len(lines) == 1
    assert "--resume" in lines[0] and str(tmp_path / "out.partial") in lines[0]


POOL_SCRIPT = textwrap.dedent("""
    import sys, time
    from pgdata.parallel import ordered_map

    def slow(item):
        time.sleep(0.2)
        return item

    if __name__ == "__main__":
        try:
            for result in ordered_map(slow, range(200), workers=2, prefetch=4):
                print("result", result, flush=True)
                if result == 0:
                    input()  # the test now interrupts or kills this process
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
""")


def start_pool_script(tmp_path: Path) -> subprocess.Popen:
    script = tmp_path / "pool.py"
    script.write_text(POOL_SCRIPT)
    process = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    assert process.stdout.readline().strip() == "result 0"
    return process


def test_pool_workers_leave_ctrl_c_to_the_parent(tmp_path):
    process = start_pool_script(tmp_path)
    os.killpg(process.pid, signal.SIGINT)  # as the terminal does: the whole process group
    process.wait(timeout=60)
    stderr = process.stderr.read()  # returns once every worker has closed stderr
    process.stdin.close()
    process.stdout.close()
    process.stderr.close()
    assert stderr.strip() == "interrupted", stderr


def test_pool_workers_exit_quietly_when_the_parent_is_killed(tmp_path):
    process = start_pool_script(tmp_path)
    process.kill()  # kill -9 of the parent only
    _, stderr = process.communicate(timeout=60)  # returns once every worker has closed stderr
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr


# the same class of fault elsewhere: create_celebahq's failure report

def test_celebahq_failure_report_never_replaces_an_input(tmp_path):
    from tests.pgdata.test_celebahq_cli import _invoke, _mini

    celeba, delta, md5_option = _mini(tmp_path, [5], token_edits={0: lambda token: token[:100]})
    landmarks = celeba / "Anno" / "list_landmarks_celeba.txt"
    before = landmarks.read_bytes()
    result = _invoke("create_celebahq", tmp_path / "out", celeba, delta, "--subset", "--quiet", "--keep_going",
                     "--report", landmarks, *md5_option)
    assert result.exit_code != 0 and "--report" in str(result.exception)
    assert landmarks.read_bytes() == before


def test_celebahq_failure_report_replaces_only_an_earlier_report(tmp_path):
    from tests.pgdata.test_celebahq_cli import _invoke, _mini

    celeba, delta, md5_option = _mini(tmp_path, [5], token_edits={0: lambda token: token[:100]})
    notes = tmp_path / "notes.json"
    notes.write_text('{"mine": true}')
    arguments = ["create_celebahq", tmp_path / "out", celeba, delta, "--subset", "--quiet", "--keep_going",
                 *md5_option]
    result = _invoke(*arguments, "--report", notes)
    assert result.exit_code != 0 and "--report" in str(result.exception)
    assert notes.read_text() == '{"mine": true}'
    for _ in range(2):  # the default report, then the same again over the earlier one
        result = _invoke(*arguments)
        assert result.exit_code != 0 and "1 of 1 image(s) failed" in str(result.exception)
        assert (tmp_path / "out.failures.json").is_file()
