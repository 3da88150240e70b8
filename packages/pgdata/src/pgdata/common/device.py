"""Device selection for the torch tools (pgtrain, pgmetrics): CUDA when present or asked for, else the CPU.
torch is imported only here and only when called: pgdata itself does not depend on it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pgdata.common.errors import ToolkitError

if TYPE_CHECKING:
    import torch

AUTO_NAMES = (None, "", "auto")


def select_device(name: str | None = None, error_type: type[ToolkitError] = ToolkitError,
                  cuda_index: int | None = None) -> torch.device:
    """None, '' or 'auto' -> CUDA if available (device `cuda_index` when given) else the CPU; 'cpu', 'cuda',
    'cuda:1' ... as given, checked: an unknown name, or CUDA where there is none, is one line (`error_type`)."""
    import torch

    if name in AUTO_NAMES:
        if not torch.cuda.is_available():
            return torch.device("cpu")
        return torch.device("cuda" if cuda_index is None else f"cuda:{cuda_index}")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError) as error:
        raise error_type(f"--device {name!r}: not a torch device ({error})") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise error_type(f"--device {name}: CUDA is not available here (torch {torch.__version__}); "
                         "use --device cpu")
    return device
