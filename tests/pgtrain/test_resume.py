"""Resume: a run stopped and continued ends bit-identical to an uninterrupted one (CPU, same seed)."""

from __future__ import annotations

import pytest
import torch

from pgtrain.checkpoint import save_snapshot
from pgtrain.errors import PgtrainError
from pgtrain.loop import Trainer
from pgtrain.run_dir import locate_resume
from pgtrain.training_state import resume_config
from tests.pgtrain.test_loop import tiny_reader, tiny_trainer


def _assert_same_training_state(a: Trainer, b: Trainer) -> None:
    for name in ("G", "D", "Gs"):
        for (key, x), (_, y) in zip(getattr(a, name).state_dict().items(), getattr(b, name).state_dict().items(),
                                    strict=True):
            assert torch.equal(x, y), f"{name}.{key} differs"
    for name in ("G_opt", "D_opt"):
        sa, sb = getattr(a, name).state_dict()["state"], getattr(b, name).state_dict()["state"]
        assert sa.keys() == sb.keys()
        for k in sa:
            for slot in sa[k]:
                assert torch.equal(sa[k][slot], sb[k][slot]), f"{name} {k} {slot} differs"
    assert a.state.cur_nimg == b.state.cur_nimg and a.state.data_position == b.state.data_position
    assert torch.equal(a.generator.get_state(), b.generator.get_state())


# Stop points: mid fade-in (lod 1.5, just after an Adam reset); mid fade-in of the next level
@pytest.mark.parametrize("stop_at_nimg", [32, 80])
def test_resumed_run_equals_uninterrupted_run(tmp_path, stop_at_nimg):
    (tmp_path / "straight").mkdir()
    (tmp_path / "interrupted").mkdir()
    (tmp_path / "resumed").mkdir()
    straight = tiny_trainer(tmp_path / "straight", reader=tiny_reader())
    assert straight.run() is True

    first = tiny_trainer(tmp_path / "interrupted", reader=tiny_reader())
    assert first.run(stop_at_nimg=stop_at_nimg) is False
    snapshot = locate_resume(tmp_path / "interrupted")
    config, _ = resume_config(snapshot)
    assert config == first.config
    second = Trainer(config, tiny_reader(), tmp_path / "resumed", log=lambda line="": None, resume_from=snapshot)
    assert second.state.cur_nimg == stop_at_nimg
    assert second.run() is True
    _assert_same_training_state(straight, second)


def test_resume_rejects_paths_of_the_wrong_kind(tmp_path):
    with pytest.raises(PgtrainError, match="not a run directory with snapshots"):
        locate_resume(tmp_path)
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    with pytest.raises(PgtrainError, match="not a pgtrain snapshot"):
        locate_resume(tmp_path / "image.png")
    with pytest.raises(PgtrainError, match="no such file"):
        locate_resume(tmp_path / "missing")
    (tmp_path / "garbage.pt").write_bytes(b"not a torch file")
    with pytest.raises(PgtrainError, match="not a pgtrain snapshot|not a readable pgtrain snapshot"):
        resume_config(tmp_path / "garbage.pt")


def test_resume_rejects_a_network_only_snapshot(tmp_path):
    trainer = tiny_trainer()
    path = save_snapshot(tmp_path / "imported.pt", network_kwargs=trainer.network_kwargs,
                         G_state=trainer.G.state_dict(), D_state=trainer.D.state_dict(),
                         Gs_state=trainer.Gs.state_dict(), metadata={"importer": "tf"})
    with pytest.raises(PgtrainError, match="only snapshots written by `pgtrain run` can be resumed") as info:
        resume_config(path)
    assert "\n" not in str(info.value)
