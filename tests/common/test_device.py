"""pgdata.common.device.select_device: the device choice of every tool (auto picks CUDA where there is one), with
one wording for a bad name and for CUDA asked where there is none."""

from __future__ import annotations

import pytest
import torch

from pgdata.common.device import select_device
from pgdata.common.errors import ToolkitError


class DemoError(ToolkitError):
    pass


@pytest.mark.parametrize("name,expected", [(None, "cpu"), ("", "cpu"), ("auto", "cpu"), ("cpu", "cpu"),
                                           ("cpu:0", "cpu:0"), ("CPU", None)])
def test_choices_without_cuda(monkeypatch, name, expected) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    if expected is None:
        with pytest.raises(ToolkitError, match="not a torch device"):
            select_device(name)
    else:
        assert select_device(name) == torch.device(expected)


def test_auto_picks_cuda_when_present(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert select_device("auto") == torch.device("cuda") and select_device(None, cuda_index=2) == torch.device("cuda:2")
    assert select_device("cuda:1") == torch.device("cuda:1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert select_device(None, cuda_index=2) == torch.device("cpu")


def test_bad_names_are_one_line_of_the_callers_error(monkeypatch) -> None:
    with pytest.raises(DemoError, match=r"^--device 'gpu0': not a torch device \(") as info:
        select_device("gpu0", DemoError)
    assert "\n" not in str(info.value) and info.value.__cause__ is not None
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DemoError, match=r"^--device cuda: CUDA is not available here \(torch .*use --device cpu"):
        select_device("cuda", DemoError)
