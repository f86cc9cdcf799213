"""Apple's original `depth_pro.pt` (ml-depth-pro's state dict) <-> transformers' DepthPro names.

ml-depth-pro names its parts after its own modules: timm ViTs (`blocks.N.attn.qkv`, `ls1.gamma`),
`encoder.upsample*` projection/upsample blocks, a `decoder` of `convs` and `fusions` indexed from the
highest resolution, `head.N`, and `fov.{encoder,downsample,head}`. transformers keeps the same
tensors under other names, splits each fused qkv projection into q/k/v, and orders the neck and the
fusion stage from the lowest resolution. Each rule below pairs one name pattern of each side; the
index maps (`4 - i`, `2 - i`, a residual block's conv `c` at Sequential index `2c - 1`) follow from
the two sources. A key that no rule explains is an error, never dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import torch

from visionbench.errors import WeightsError

LEVELS = 5  # DepthPro fuses 2 intermediate hooks + 3 image scales


@dataclass(frozen=True)
class _Rule:
    hf: str  # template: {name} is a number, {p} is weight|bias
    orig: str
    to_orig: dict[str, Callable[[int], int]]
    to_hf: dict[str, Callable[[int], int]]

    def match(self, key: str, side: str) -> str | None:
        """The other side's name of `key`, or None when this rule does not describe it."""
        src, dst, maps = (self.hf, self.orig, self.to_orig) if side == "hf" else (self.orig, self.hf, self.to_hf)
        found = re.fullmatch(_regex(src), key)
        if found is None:
            return None
        values = {
            name: value if name == "p" else maps.get(name, int)(int(value)) for name, value in found.groupdict().items()
        }
        return dst.format(**values)


def _regex(template: str) -> str:
    out, pos = [], 0
    for m in re.finditer(r"\{(\w+)\}", template):
        out.append(re.escape(template[pos : m.start()]))
        out.append(r"(?P<p>weight|bias)" if m.group(1) == "p" else rf"(?P<{m.group(1)}>\d+)")
        pos = m.end()
    out.append(re.escape(template[pos:]))
    return "".join(out)


def _rule(hf: str, orig: str, **maps: tuple[Callable[[int], int], Callable[[int], int]]) -> _Rule:
    return _Rule(hf, orig, {k: v[0] for k, v in maps.items()}, {k: v[1] for k, v in maps.items()})


_FLIP_LEVEL = (lambda i: LEVELS - 1 - i, lambda i: LEVELS - 1 - i)  # lowest-resolution first <-> highest first
_FLIP_SCALE = (lambda i: 2 - i, lambda i: 2 - i)
_RESIDUAL_CONV = (lambda c: 2 * c - 1, lambda i: (i + 1) // 2)  # Sequential(ReLU, Conv, ReLU, Conv)

_VIT_PREFIXES = {
    "depth_pro.encoder.patch_encoder.model.": "encoder.patch_encoder.",
    "depth_pro.encoder.image_encoder.model.": "encoder.image_encoder.",
    "fov_model.fov_encoder.model.": "fov.encoder.0.",
}
_VIT_RULES = [
    ("embeddings.cls_token", "cls_token"),
    ("embeddings.position_embeddings", "pos_embed"),
    ("embeddings.patch_embeddings.projection.{p}", "patch_embed.proj.{p}"),
    ("encoder.layer.{n}.norm{k}.{p}", "blocks.{n}.norm{k}.{p}"),
    ("encoder.layer.{n}.attention.o_proj.{p}", "blocks.{n}.attn.proj.{p}"),
    ("encoder.layer.{n}.layer_scale{k}.lambda1", "blocks.{n}.ls{k}.gamma"),
    ("encoder.layer.{n}.mlp.fc{k}.{p}", "blocks.{n}.mlp.fc{k}.{p}"),
    ("layernorm.{p}", "norm.{p}"),
]
_QKV_HF = "encoder.layer.{n}.attention.{x}_proj.{p}"
_QKV_ORIG = "blocks.{n}.attn.qkv.{p}"
_FUSION = [
    ("residual_layer{r}.convolution{c}.{p}", "resnet{r}.residual.{c}.{p}", {"c": _RESIDUAL_CONV}),
    ("projection.{p}", "out_conv.{p}", {}),
    ("deconv.weight", "deconv.weight", {}),
]

RULES: list[_Rule] = [
    *[_rule(h + hs, o + os_) for h, o in _VIT_PREFIXES.items() for hs, os_ in _VIT_RULES],
    _rule("depth_pro.neck.feature_upsample.intermediate.0.layers.{m}.weight", "encoder.upsample_latent1.{m}.weight"),
    _rule("depth_pro.neck.feature_upsample.intermediate.1.layers.{m}.weight", "encoder.upsample_latent0.{m}.weight"),
    _rule(
        "depth_pro.neck.feature_upsample.scaled_images.{s}.layers.{m}.weight",
        "encoder.upsample{s}.{m}.weight",
        s=_FLIP_SCALE,
    ),
    _rule("depth_pro.neck.feature_upsample.image_block.layers.0.{p}", "encoder.upsample_lowres.{p}"),
    _rule("depth_pro.neck.fuse_image_with_low_res.{p}", "encoder.fuse_lowres.{p}"),
    _rule("depth_pro.neck.feature_projection.projections.{j}.weight", "decoder.convs.{j}.weight", j=_FLIP_LEVEL),
    # the highest-resolution fusion (no deconv) before the others, so `fusions.0` never maps to intermediate.4
    *[_rule(f"fusion_stage.final.{h}", f"decoder.fusions.0.{o}", **m) for h, o, m in _FUSION if "deconv" not in h],
    *[
        _rule(f"fusion_stage.intermediate.{{f}}.{h}", f"decoder.fusions.{{f}}.{o}", f=_FLIP_LEVEL, **m)
        for h, o, m in _FUSION
    ],
    _rule("head.layers.{n}.{p}", "head.{n}.{p}"),
    _rule("fov_model.fov_encoder.neck.{p}", "fov.encoder.1.{p}"),
    _rule("fov_model.conv.{p}", "fov.downsample.0.{p}"),
    _rule("fov_model.head.layers.{n}.{p}", "fov.head.{n}.{p}"),
]


def is_original(state: dict[str, torch.Tensor]) -> bool:
    """True for ml-depth-pro's layout (its fused qkv ViT blocks), not transformers'."""
    return any(k.startswith("encoder.patch_encoder.blocks.") for k in state)


def hf_to_original(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers' DepthPro state dict in ml-depth-pro's names (q, k, v joined into qkv)."""
    qkv: dict[str, dict[str, torch.Tensor]] = {}
    rest = {}
    for key, tensor in state.items():
        joined = _qkv_key(key)
        if joined is None:
            rest[key] = tensor
        else:
            qkv.setdefault(joined[0], {})[joined[1]] = tensor
    out = _rename(rest, "hf", "transformers DepthPro")
    for name, parts in qkv.items():
        if set(parts) != {"q", "k", "v"}:
            raise WeightsError(f"{name}: needs q, k and v projections, found {', '.join(sorted(parts))}")
        out[name] = torch.cat([parts["q"], parts["k"], parts["v"]], dim=0)
    return out


def original_to_hf(state: dict[str, torch.Tensor], source: str = "depth_pro.pt") -> dict[str, torch.Tensor]:
    """ml-depth-pro's state dict in transformers' names (each qkv split into q, k, v)."""
    out: dict[str, torch.Tensor] = {}
    rest = {}
    for key, tensor in state.items():
        split = _split_qkv(key, tensor)
        if split is None:
            rest[key] = tensor
        else:
            out.update(split)
    return {**out, **_rename(rest, "orig", source)}


def _rename(state: dict[str, torch.Tensor], side: str, source: str) -> dict[str, torch.Tensor]:
    """Every key through the rules; a key that no rule explains is an error, never dropped."""
    names = {key: _convert(key, side) for key in state}
    unknown = [key for key, name in names.items() if name is None]
    if unknown:
        raise WeightsError(
            f"{source}: {len(unknown)} keys are not part of DepthPro's layout (e.g. {', '.join(unknown[:3])}); "
            "is this a checkpoint of another model?"
        )
    return {name: state[key] for key, name in names.items() if name is not None}


def _convert(key: str, side: str) -> str | None:
    for rule in RULES:
        name = rule.match(key, side)
        if name is not None:
            return name
    return None


def _qkv_key(key: str) -> tuple[str, str] | None:
    for hf, orig in _VIT_PREFIXES.items():
        found = re.fullmatch(re.escape(hf) + r"encoder\.layer\.(\d+)\.attention\.([qkv])_proj\.(weight|bias)", key)
        if found:
            n, part, p = found.groups()
            return orig + _QKV_ORIG.format(n=n, p=p), part
    return None


def _split_qkv(key: str, tensor: torch.Tensor) -> dict[str, torch.Tensor] | None:
    for hf, orig in _VIT_PREFIXES.items():
        found = re.fullmatch(re.escape(orig) + r"blocks\.(\d+)\.attn\.qkv\.(weight|bias)", key)
        if found:
            n, p = found.groups()
            if tensor.shape[0] % 3:
                raise WeightsError(f"{key}: a qkv tensor of {tensor.shape[0]} rows cannot hold q, k and v")
            q, k, v = torch.chunk(tensor, 3, dim=0)
            return {hf + _QKV_HF.format(n=n, x=x, p=p): t for x, t in zip("qkv", (q, k, v), strict=True)}
    return None
