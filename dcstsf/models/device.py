"""Where DC-STSF's tensors live: ``device="auto"`` (a CUDA device when one is present), ``"cpu"`` or ``"cuda"``.

Training, scene adaptation and fusion accept the same three values (``device=``, CLI ``--device``). Results
on a CUDA device equal the CPU's to floating-point rounding only (different kernels sum in other orders),
so a run records the device it used.
"""

from __future__ import annotations

import torch

from dcstsf.errors import DcstsfInputError

__all__ = ["DEVICES", "resolve_device"]

#: Values accepted by ``device=`` and ``--device``.
DEVICES = ("auto", "cpu", "cuda")


def resolve_device(spec: str | torch.device) -> torch.device:
    """The torch device for ``spec``: ``"auto"`` picks CUDA when available, else the CPU.

    Raises
    ------
    DcstsfInputError
        An unknown value, or ``"cuda"`` on a machine where PyTorch sees no CUDA device.
    """
    if isinstance(spec, torch.device):
        return spec
    name = str(spec).lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise DcstsfInputError(
                f"device {spec!r} was asked for but PyTorch sees no CUDA device (torch {torch.__version__}, "
                f"built with CUDA {torch.version.cuda}); use device='cpu' or 'auto' (CLI --device cpu|auto), "
                "or install a CUDA build of PyTorch on a machine with an NVIDIA GPU"
            )
        return torch.device(name)
    raise DcstsfInputError(f"unknown device {spec!r}; use one of {', '.join(DEVICES)} (CLI --device)")
