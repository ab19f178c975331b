"""Make the PyTorch test files with real torch (dev time only; CI has no torch).

    /work/venvs/torch/bin/python tests/formats/torch/data/make_torch_fixtures.py

- state_dict.bin: a small transformer-like state dict as `torch.save(model.state_dict())`
  writes it: float32/float16/bfloat16 weights, an int64 buffer, an lm_head tied to the
  embedding (two detached tensors on one storage), an expanded tensor (stride 0), a
  transposed (non-contiguous) weight, q/k/v views of one fused storage;
- checkpoint.pt: `{"model": sd, "optimizer": adam.state_dict(), "epoch": 3}`;
- deflated.pth: checkpoint.pt re-zipped with every record deflated;
- exotic.pt: float8_e4m3fn, float8_e5m2, uint16, bool, complex64 tensors and a torch.device;
- legacy.pt: the pre-1.6 format (`_use_new_zipfile_serialization=False`);
- scripted.pt: a TorchScript archive (`torch.jit.save`);
- expected.npz: every tensor's values as torch loads them (bfloat16/float8 as float32), keyed
  `<file>/<name>`.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent


class Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(40, 16)
        self.qkv = torch.nn.Linear(16, 48)
        self.norm = torch.nn.LayerNorm(16)
        self.fc = torch.nn.Linear(16, 24).half()
        self.proj = torch.nn.Linear(24, 16).to(torch.bfloat16)
        self.lm_head = torch.nn.Linear(16, 40, bias=False)
        self.lm_head.weight = self.embed.weight
        self.register_buffer("position_ids", torch.arange(12).expand((1, -1)))
        self.register_buffer("steps", torch.tensor(7, dtype=torch.int64))


def state_dict() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    sd = Tiny().state_dict()
    qkv = sd["qkv.weight"]
    sd["q.weight"], sd["k.weight"], sd["v.weight"] = qkv[:16], qkv[16:32], qkv[32:]
    sd["fc_t.weight"] = torch.randn(8, 6).t()  # stored transposed: stride (1, 6)
    sd["expanded"] = torch.arange(4.0).expand(3, -1)  # stride (0, 1)
    return sd


def checkpoint(sd: dict[str, torch.Tensor]) -> dict[str, object]:
    params = [torch.nn.Parameter(sd["norm.weight"].clone()), torch.nn.Parameter(torch.ones(3))]
    opt = torch.optim.Adam(params, lr=0.01)
    sum(p.sum() for p in params).backward()
    opt.step()
    small = {k: v for k, v in sd.items() if k.startswith(("norm", "embed"))}
    return {"model": small, "optimizer": opt.state_dict(), "epoch": 3}


def deflate(src: Path, dst: Path) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            name = info.filename.replace(src.stem + "/", dst.stem + "/", 1)
            zout.writestr(name, zin.read(info.filename))


def values(obj: object, prefix: str = "") -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    if isinstance(obj, torch.Tensor):
        t = obj.detach()
        if t.dtype in (torch.bfloat16, torch.float8_e4m3fn, torch.float8_e5m2):
            t = t.float()
        out[prefix] = t.numpy().copy()
    elif isinstance(obj, dict):
        for k, v in obj.items():
            out |= values(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            out |= values(v, f"{prefix}.{i}" if prefix else str(i))
    return out


def main() -> None:
    sd = state_dict()
    torch.save(sd, HERE / "state_dict.bin")
    ck = checkpoint(sd)
    torch.save(ck, HERE / "checkpoint.pt")
    deflate(HERE / "checkpoint.pt", HERE / "deflated.pth")
    exotic = {
        "f8a": torch.linspace(-3, 3, 10).to(torch.float8_e4m3fn),
        "f8b": torch.linspace(-3, 3, 10).to(torch.float8_e5m2),
        "u16": (torch.arange(5) * 1000).to(torch.uint16),
        "mask": torch.tensor([True, False, True]),
        "c": torch.tensor([1 + 2j, 3 - 1j], dtype=torch.complex64),
        "device": torch.device("cpu"),
    }
    torch.save(exotic, HERE / "exotic.pt")
    torch.save({"w": torch.ones(3)}, HERE / "legacy.pt", _use_new_zipfile_serialization=False)
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), HERE / "scripted.pt")
    expected = {}
    for name, obj in [("state_dict.bin", sd), ("checkpoint.pt", ck), ("exotic.pt", exotic)]:
        expected |= {f"{name}/{k}": v for k, v in values(obj).items()}
    np.savez(HERE / "expected.npz", **expected)


if __name__ == "__main__":
    main()
