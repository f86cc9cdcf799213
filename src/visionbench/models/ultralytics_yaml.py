"""The one gate every `ultralytics:` model yaml goes through before ultralytics builds it.

Ultralytics' `parse_model` is code, not a parser: it `eval`s the `activation:` value, looks module
names up in its own `globals()` (so any name imported there can be called), and resolves string
arguments through its `locals()`. A yaml is therefore only as safe as what it names. This module
reads the yaml with `yaml.safe_load` and accepts only the shapes the stock model files use: known
top-level keys, `[torch.]nn.<activation>(literal args)`, known layer names, and arguments that are
literals or the few names the stock files use (`nc`, `kpt_shape`, `nearest`, `None`). Anything else
is refused with one line naming the key; `--trust-remote-code` is the only way around it.
"""

from __future__ import annotations

import ast
import difflib
import re
from pathlib import Path
from typing import Any

import yaml

from visionbench.errors import BadInputError, UnknownModelError
from visionbench.models.base import first_line

# Top-level keys of the stock yamls (ultralytics/cfg/models), plus what yaml_model_load adds.
ALLOWED_KEYS = frozenset(
    {
        "nc", "scales", "backbone", "head", "activation", "depth_multiple", "width_multiple", "kpt_shape",
        "end2end", "reg_max", "text_model", "scale", "yaml_file", "channels", "ch", "inplace",
    }
)  # fmt: skip
# `torch.nn` activations a model may set as Conv's default (the stock files use ReLU and SiLU).
ALLOWED_ACTIVATIONS = frozenset(
    {
        "SiLU", "ReLU", "ReLU6", "LeakyReLU", "GELU", "Hardswish", "Hardsigmoid", "Mish", "ELU", "CELU",
        "SELU", "PReLU", "Sigmoid", "Tanh", "Identity",
    }
)  # fmt: skip
# Every layer name the stock yamls of the installed ultralytics use (what parse_model looks up).
ALLOWED_MODULES = frozenset(
    {
        "A2C2f", "AConv", "ADown", "AIFI", "Bottleneck", "BottleneckCSP", "C1", "C2", "C2PSA", "C2f", "C2fAttn",
        "C2fCIB", "C2fPSA", "C3", "C3Ghost", "C3TR", "C3k2", "C3x", "CBFuse", "CBLinear", "Classify", "Concat",
        "Conv", "ConvTranspose", "DWConv", "DWConvTranspose2d", "Depth", "Detect", "ELAN1", "Focus", "GhostBottleneck",
        "GhostConv", "HGBlock", "HGStem", "ImagePoolingAttn", "OBB", "OBB26", "PSA", "Pose", "Pose26", "RTDETRDecoder",
        "RepC3", "RepNCSPELAN4", "ResNetLayer", "SCDown", "SPP", "SPPELAN", "SPPF", "Segment", "Segment26",
        "SemanticSegment", "TorchVision", "WorldDetect", "YOLOEDetect", "YOLOESegment", "YOLOESegment26", "v10Detect",
        "nn.ConvTranspose2d", "nn.Identity", "nn.MaxPool2d", "nn.Upsample", "nn.ZeroPad2d", "nn.Conv2d",
        "nn.BatchNorm2d", "nn.AvgPool2d", "nn.AdaptiveAvgPool2d",
    }
)  # fmt: skip
# String arguments the stock files use that are not Python literals (resolved by parse_model).
ALLOWED_NAMES = frozenset({"nc", "kpt_shape", "nearest", "bilinear", "None"})

TRUST_HINT = "pass --trust-remote-code only if you trust this file"


def load_model_yaml(target: str, *, trust_remote_code: bool = False) -> dict[str, Any]:
    """The model dict (as `yaml_model_load` returns it) of a yaml path or stock name, checked unless trusted.

    The caller hands the dict, not the path, to the model class: ultralytics never reads the file itself.
    """
    path = find_model_yaml(target)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise BadInputError(f"ultralytics:{target}: not a readable yaml ({first_line(exc)})") from exc
    except OSError as exc:
        raise BadInputError(f"ultralytics:{target}: cannot read {path} ({exc.strerror or exc})") from exc
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("backbone", "head")):
        raise BadInputError(f"ultralytics:{target}: not an ultralytics model yaml (needs backbone: and head: lists)")
    if not trust_remote_code:
        check_model_dict(data, f"ultralytics:{target}")
    else:
        _check_rows(data, f"ultralytics:{target}", shape_only=True)
    from ultralytics.nn.tasks import guess_model_scale

    data["scale"] = guess_model_scale(Path(target))
    data["yaml_file"] = str(target)
    return data


def find_model_yaml(target: str) -> Path:
    """A local file, else a stock yaml of the installed ultralytics (the scale letter dropped, as it does)."""
    if "://" in target:
        raise BadInputError(f"ultralytics:{target}: URLs are not fetched; download the yaml and pass its path")
    local = Path(target).expanduser()
    if local.is_file():
        return local
    if local.exists():
        raise BadInputError(f"ultralytics:{target}: is a folder, not a model yaml")
    stock = stock_yamls()
    name = local.name
    unified = re.sub(r"(\d+)([nslmx])(.+)?$", r"\1\3", local.stem) + local.suffix  # yolo11n.yaml -> yolo11.yaml
    for candidate in (name, unified):
        if candidate in stock and len(local.parts) == 1:
            return stock[candidate]
    if len(local.parts) > 1:
        raise UnknownModelError(f"ultralytics:{target}: no such file")
    close = difflib.get_close_matches(unified, list(stock), n=3, cutoff=0.6)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise UnknownModelError(f"ultralytics:{target}: no such file, and not a stock ultralytics model yaml.{hint}")


def stock_yamls() -> dict[str, Path]:
    """File name -> path of every model yaml shipped with the installed ultralytics."""
    import ultralytics

    root = Path(ultralytics.__file__).parent / "cfg" / "models"
    return {p.name: p for p in sorted(root.rglob("*.yaml"))}


def check_model_dict(data: dict[str, Any], what: str) -> None:
    """Refuse anything parse_model would evaluate that the stock files do not use; one line naming the key."""
    for key in data:
        if key not in ALLOWED_KEYS:
            raise BadInputError(f"{what}: key {key!r} is not one the stock ultralytics models use; {TRUST_HINT}")
    act = data.get("activation")
    if act is not None and not _allowed_activation(act):
        raise BadInputError(
            f"{what}: activation: {str(act)[:80]!r} is not a torch.nn activation with literal arguments "
            f"(allowed: {', '.join(sorted(ALLOWED_ACTIVATIONS))}); {TRUST_HINT}"
        )
    for key in ("nc", "reg_max", "channels", "ch"):
        if key in data and not _is_int(data[key]):
            raise BadInputError(f"{what}: {key}: must be an integer; {TRUST_HINT}")
    for key in ("depth_multiple", "width_multiple"):
        if key in data and not _is_number(data[key]):
            raise BadInputError(f"{what}: {key}: must be a number; {TRUST_HINT}")
    if "kpt_shape" in data and not (isinstance(data["kpt_shape"], list) and all(_is_int(v) for v in data["kpt_shape"])):
        raise BadInputError(f"{what}: kpt_shape: must be a list of integers; {TRUST_HINT}")
    if "text_model" in data and not (
        isinstance(data["text_model"], str) and re.fullmatch(r"[\w.:-]{1,64}", data["text_model"])
    ):
        raise BadInputError(f"{what}: text_model: must be a model name such as mobileclip:blt; {TRUST_HINT}")
    scales = data.get("scales")
    if scales is not None and not (
        isinstance(scales, dict) and all(isinstance(v, list) and all(_is_number(x) for x in v) for v in scales.values())
    ):
        raise BadInputError(f"{what}: scales: must map scale letters to lists of numbers; {TRUST_HINT}")
    _check_rows(data, what, shape_only=False)


def _check_rows(data: dict[str, Any], what: str, *, shape_only: bool) -> None:
    for section in ("backbone", "head"):
        for i, row in enumerate(data[section]):
            where = f"{what}: {section}[{i}]"
            if not (isinstance(row, list) and len(row) == 4):
                raise BadInputError(f"{where}: expected [from, repeats, module, args]")
            frm, n, module, args = row
            if not (_is_int(frm) or (isinstance(frm, list) and all(_is_int(f) for f in frm))):
                raise BadInputError(f"{where}: 'from' must be an integer or a list of integers")
            if not _is_int(n):
                raise BadInputError(f"{where}: repeats must be an integer")
            if not isinstance(module, str) or not isinstance(args, list):
                raise BadInputError(f"{where}: module must be a name and args a list")
            if shape_only:
                continue
            if module not in ALLOWED_MODULES:
                raise BadInputError(f"{where}: module {module[:60]!r} is not a stock ultralytics layer; {TRUST_HINT}")
            if module == "TorchVision":  # [out channels, torchvision model name, weights name, ...]
                _check_torchvision(args, where)
            _check_args(args, where, start=3 if module == "TorchVision" else 0)


def _check_torchvision(args: list[Any], where: str) -> None:
    """The one stock layer with string arguments: a torchvision model by its registered name."""
    from torchvision.models import list_models

    name = args[1] if len(args) > 1 else None
    if name not in list_models():
        raise BadInputError(f"{where}: TorchVision model {str(name)[:60]!r} is not a torchvision model; {TRUST_HINT}")
    weights = args[2] if len(args) > 2 else "DEFAULT"
    if not (isinstance(weights, str) and weights.isidentifier()):
        raise BadInputError(f"{where}: TorchVision weights {str(weights)[:60]!r} is not a weights name; {TRUST_HINT}")


def _check_args(args: list[Any], where: str, start: int) -> None:
    for j, arg in enumerate(args[start:], start=start):
        if not _allowed_arg(arg):
            raise BadInputError(f"{where}: argument {j} {str(arg)[:60]!r} is not a literal; {TRUST_HINT}")


def _allowed_activation(act: Any) -> bool:
    """`nn.X(...)` or `torch.nn.X(...)` with X an allowed activation and only literal arguments."""
    if not isinstance(act, str):
        return False
    try:
        call = ast.parse(act.strip(), mode="eval").body
    except SyntaxError:
        return False
    if not isinstance(call, ast.Call):
        return False
    parts, node = [], call.func
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return False
    parts.append(node.id)
    if parts[1:] not in (["nn"], ["nn", "torch"]) or parts[0] not in ALLOWED_ACTIVATIONS:
        return False
    try:
        values = [ast.literal_eval(a) for a in call.args] + [ast.literal_eval(k.value) for k in call.keywords]
    except ValueError:
        return False
    return all(k.arg is not None for k in call.keywords) and all(_is_literal(v) for v in values)


def _allowed_arg(arg: Any) -> bool:
    if isinstance(arg, str):
        if arg in ALLOWED_NAMES:
            return True
        try:
            return _is_literal(ast.literal_eval(arg))
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return False
    return _is_literal(arg)


def _is_literal(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_literal(v) for v in value)
    return False


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
