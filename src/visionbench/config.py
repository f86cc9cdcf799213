"""What a benchmark run was asked to do: one pydantic record that feeds `--help`, run.json and resume.

It sits at the bottom of the import graph beside `results` (run.json embeds it). The suite and each
worker read only this record, so a Python user gets the CLI's run with `run_suite(BenchConfig(...))`.
"""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

DTYPE_NAMES = {"float32": "float32", "fp32": "float32", "float16": "float16", "fp16": "float16", "half": "float16",
               "bfloat16": "bfloat16", "bf16": "bfloat16"}  # fmt: skip
MIN_INPUT_SIZE, MAX_INPUT_SIZE = 32, 8192

# Variants `--variants` accepts (bench/variants.py measures them), and the names users also guess for them.
VARIANT_NAMES = ["bfloat16", "float16", "channels-last", "compile", "sdpa", "fused", "cuda-graphs", "fast", "auto"]
VARIANT_ALIASES = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "channels_last": "channels-last",
                   "channelslast": "channels-last", "torch.compile": "compile", "torch-compile": "compile",
                   "attention": "sdpa", "fuse": "fused", "conv-bn": "fused", "cudagraphs": "cuda-graphs",
                   "cuda-graph": "cuda-graphs", "cuda_graphs": "cuda-graphs",
                   "reduce-overhead": "cuda-graphs"}  # fmt: skip


def canonical_variants(names: list[str]) -> list[str]:
    """Variant names as measured, in the order given, once each; an unknown name is one clear error."""
    out: list[str] = []
    for raw in (n for item in names for n in item.split(",")):
        name = raw.strip().lower()
        if not name:
            continue
        name = VARIANT_ALIASES.get(name, name)
        if name not in VARIANT_NAMES:
            raise ValueError(f"--variants {raw.strip()!r}: use {', '.join(VARIANT_NAMES)}")
        if name not in out:
            out.append(name)
    return out


def _seconds(default: float | None, description: str, renamed: tuple[str, str] | None = None, **bound: float) -> Any:
    """A finite number of seconds; `renamed` (new, old) also reads its schema 1.0 name."""
    alias = {"validation_alias": AliasChoices(*renamed)} if renamed else {}
    return Field(default, allow_inf_nan=False, description=description, **bound, **alias)


SUITE_MODELS = [
    "depthpro",
    "depth-anything-v2-small",
    "depth-anything-v2-base",
    "depth-anything-v2-large",
    "yolo11n",
    "yolo11n-seg",
    "yolo11n-pose",
    "mobile-sam",
]


class ModelPlan(BaseModel):
    """Per-model overrides of the repeat policy (the suite lowers repeats for models that take minutes)."""

    model_config = ConfigDict(extra="forbid")

    runs: int | None = Field(None, ge=1, description="Minimum timed repeats for this model.")
    warmup: int | None = Field(None, ge=1, description="Untimed warmup forwards for this model.")
    budget_s: float | None = Field(None, ge=0, description="Time budget per timed loop for this model.")
    input_size: int | None = Field(None, description="Input size for this model (None: the run's).")
    reason: str = Field("", description="Why the plan differs from the run's policy (shown and reported).")


class BenchConfig(BaseModel):
    """Everything a run was asked for. Field descriptions are the CLI's --help and the schema docs.

    Each field is filled by the option of the same name (`max_loop_time` by `--max-loop-time`); fields
    renamed since schema 1.0 are still read from their old names (`budget_s`, `timeout_s`, `loop_cap_s`).
    Every value is checked here, so a bad option fails before a run folder exists or a model is built.
    """

    model_config = ConfigDict(extra="forbid")

    models: list[str] = Field(description="Model names (registry names, hf:<repo|folder>, ultralytics:<yaml|.pt>).")
    images: list[str] = Field(
        default_factory=list,
        description="Image files, folders or .txt lists; empty: the real photo that ships with ultralytics (bus.jpg).",
    )
    weights: str = Field("auto", description="auto (pretrained if cached, else random, said loudly), random or a path.")
    device: str = Field("auto", description="cpu, cuda, cuda:N, mps or auto (first accelerator found).")
    dtype: str = Field("float32", description="float32, float16 or bfloat16 (weights and inputs).")
    compile: bool = Field(False, description="Wrap the module in torch.compile before warmup.")
    channels_last: bool = Field(False, description="Convert module and 4-D inputs to channels_last.")
    fuse: bool = Field(
        True,
        description="YOLO: Conv+BN folded, as ultralytics' predictor runs it; --no-fuse measures the module as built.",
    )
    input_size: int | None = Field(
        None,
        ge=MIN_INPUT_SIZE,
        le=MAX_INPUT_SIZE,
        description="Square input size in pixels (None: each model's native size).",
    )
    batch_sizes: list[int] = Field([1], description="Batch sizes to measure; an out-of-memory is that model's limit.")
    threads: int | None = Field(None, ge=1, description="torch CPU threads in each worker (unset: torch's default).")
    runs: int = Field(5, ge=1, description="Minimum timed repeats per loop.")
    budget: float = _seconds(
        10.0,
        "Seconds per timed loop: keep repeating until this many are spent (after --runs samples).",
        ("budget", "budget_s"),
        ge=0,
    )
    warmup: int = Field(1, ge=1, description="Untimed forwards before timing (at least one).")
    max_loop_time: float | None = _seconds(
        None,
        "Seconds per timed loop at most: after 2 samples, do not start one that would end later "
        "(unset: always at least --runs). `run` sets one so a forward of minutes still gets 2 samples.",
        ("max_loop_time", "loop_cap_s"),
        gt=0,
    )
    slow_forward_s: float | None = _seconds(
        None,
        "A model whose first warmup forward takes longer than this many seconds gets the one-loop plan "
        "(the end-to-end loop's forward phase is its model time; no more warmups). Unset: --budget / --runs, or "
        "half of --max-loop-time if that is smaller. Added in 1.3.",
        ge=0,
    )
    count_warmup_s: float = _seconds(
        1.0,
        "In the one-loop plan on a CPU, a warmup forward of at least this many seconds counts as a "
        "sample (first-call overhead is a negligible share of it). Added in 1.3.",
        ge=0,
    )
    e2e: bool = Field(True, description="Also time end to end: decode + preprocess + forward + postprocess.")
    timeout: float | None = _seconds(
        None,
        "Seconds per model: its worker is stopped after this long, keeping what it measured (unset: no limit).",
        ("timeout", "timeout_s"),
        gt=0,
    )
    seed: int = Field(0, description="Seed for random weights and random inputs.")
    trust_remote_code: bool = Field(False, description="Allow remote code and pickled checkpoints.")
    baseline: str = Field("depthpro", description="Model that report ratios are computed against.")
    dissect: bool = Field(False, description="Dissect each model after benchmarking (visionbench run).")
    profile: bool = Field(
        False,
        description="Also time each component (visionbench.measure.profile): for a slow model no extra forward "
        "(hooks on its counted warmup, or one hooked forward), else 2 x min(3, runs) more forwards.",
    )
    variants: list[str] = Field(
        default_factory=list,
        description="Variants timed after the main measurement, with their speed-up and accuracy cost: bfloat16, "
        "float16, channels-last, compile, sdpa, fused, cuda-graphs, fast, or auto (those that suit the device). "
        "Added in 1.3.",
    )
    preset: str | None = Field(
        None,
        description="fast: also time the model with everything that helps on this device applied (and each piece "
        "alone), saying what it applied and what not. Added in 1.3.",
    )
    quick: bool = Field(False, description="The run was shortened with --quick (see `cuts`).")
    cuts: list[str] = Field(default_factory=list, description="What --quick or the suite plan cut, in words.")
    plans: dict[str, ModelPlan] = Field(default_factory=dict, description="Per-model overrides of the repeat policy.")

    @field_validator("dtype")
    @classmethod
    def _known_dtype(cls, v: str) -> str:
        if v not in DTYPE_NAMES:
            raise ValueError(f"--dtype {v!r}: use float32, float16 or bfloat16")
        return DTYPE_NAMES[v]

    @field_validator("variants", mode="before")
    @classmethod
    def _known_variants(cls, v: object) -> list[str]:
        if v is None:
            return []
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise ValueError("--variants: a comma-separated list of names")
        return canonical_variants(v)

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, v: str | None) -> str | None:
        name = (v or "").strip().lower()
        if name not in {"fast", "none", ""}:
            raise ValueError(f"--preset {v!r}: use fast")
        return "fast" if name == "fast" else None

    @field_validator("batch_sizes")
    @classmethod
    def _positive_sorted(cls, v: list[int]) -> list[int]:
        if not v or any(b < 1 for b in v):
            raise ValueError("batch sizes must be positive integers")
        return sorted(set(v))

    def plan_for(self, model: str) -> ModelPlan:
        """The effective policy for one model: its plan's overrides on top of the run's options."""
        p = self.plans.get(model, ModelPlan())
        return ModelPlan(
            runs=p.runs or self.runs,
            warmup=p.warmup or self.warmup,
            budget_s=self.budget if p.budget_s is None else p.budget_s,
            input_size=p.input_size or self.input_size,
            reason=p.reason,
        )
