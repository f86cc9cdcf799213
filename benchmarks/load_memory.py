"""Pretrained loading holds one copy of the weights: peak RSS growth while loading vs the weights' size.

Saves a random Depth Anything V2 Large (335 M parameters, 1.34 GB in float32) as a safetensors file and
as a Hugging Face folder, then loads each with `visionbench.create_model(..., weights=PATH)` in a fresh
subprocess and prints the peak resident memory gained during the load divided by the weights' bytes.
About 1.0x means one copy; a load that materialises random weights and then copies the file's tensors
in would show about 2.0x.

    .venv/bin/python benchmarks/load_memory.py [--variant large]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, sys, resource, psutil
import visionbench as vb
import transformers  # imports done before the baseline
from visionbench.models import depth_anything  # noqa
base = psutil.Process().memory_info().rss
model = vb.create_model(sys.argv[1], weights=sys.argv[2])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"gain": peak - base, "bytes": sum(p.numel() * p.element_size() for p in model.module.parameters()),
                  "mode": model.weights.mode}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="large", choices=["small", "base", "large"])
    args = parser.parse_args()
    name = f"depth-anything-v2-{args.variant}"
    with tempfile.TemporaryDirectory() as tmp:
        from safetensors.torch import save_file

        import visionbench as vb

        model = vb.create_model(name, weights="random")
        file = Path(tmp) / "weights.safetensors"
        save_file({k: v.contiguous() for k, v in model.module.state_dict().items()}, str(file))
        model.module.save_pretrained(Path(tmp) / "hf")
        del model
        print(f"{name}: weights loaded from local files, peak RSS gained during the load / weights bytes")
        for label, path in [("safetensors file", file), ("HF folder", Path(tmp) / "hf")]:
            out = subprocess.run(
                [sys.executable, "-c", CHILD, name, str(path)], capture_output=True, text=True, check=True
            )
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(
                f"{label:17s} weights {r['bytes'] / 2**30:.2f} GiB, peak gain {r['gain'] / 2**30:.2f} GiB, "
                f"ratio {r['gain'] / r['bytes']:.2f}x ({r['mode']})"
            )


if __name__ == "__main__":
    main()
