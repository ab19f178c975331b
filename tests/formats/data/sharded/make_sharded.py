"""Make a sharded safetensors checkpoint as Hugging Face writes it (dev time; needs torch,
safetensors and huggingface_hub, e.g. /work/venvs/torch):

    /work/venvs/torch/bin/python tests/formats/data/sharded/make_sharded.py

`huggingface_hub.save_torch_state_dict` (what transformers' `save_pretrained` calls) with
`max_shard_size="6KB"` writes model-0000N-of-0000M.safetensors and model.safetensors.index.json;
expected.npz holds every tensor's values as torch had them (bfloat16 as float32).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from huggingface_hub import save_torch_state_dict

HERE = Path(__file__).resolve().parent


def main() -> None:
    torch.manual_seed(1)
    sd = {
        "model.embed_tokens.weight": torch.randn(64, 16),
        "model.layers.0.self_attn.q_proj.weight": torch.randn(16, 16),
        "model.layers.0.self_attn.k_proj.weight": torch.randn(16, 16).half(),
        "model.layers.0.mlp.up_proj.weight": torch.randn(32, 16).to(torch.bfloat16),
        "model.layers.0.mlp.down_proj.weight": torch.randn(16, 32),
        "model.layers.0.input_layernorm.weight": torch.ones(16),
        "model.norm.weight": torch.ones(16),
        "lm_head.weight": torch.randn(64, 16),
        "model.position_ids": torch.arange(8),
    }
    for f in HERE.glob("*.safetensors*"):
        f.unlink()
    save_torch_state_dict(sd, HERE, max_shard_size="6KB", metadata={"source": "test"})
    values = {k: (v.float() if v.dtype == torch.bfloat16 else v).numpy() for k, v in sd.items()}
    np.savez(HERE / "expected.npz", **values)


if __name__ == "__main__":
    main()
