"""What a benchmark run was asked to do: one pydantic record that feeds `--help`, run.json and resume.

It sits at the bottom of the import graph beside `results` (run.json embeds it), so the schema
needs nothing from `bench`.

The CLI builds a `BenchConfig` from its options; the suite and each worker read only this record, so
a Python user gets the same run with `run_suite(BenchConfig(models=[...]))`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

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

    runs: int | None = Field(default=None, ge=1, description="Minimum timed repeats for this model.")
    warmup: int | None = Field(default=None, ge=1, description="Untimed warmup forwards for this model.")
    budget_s: float | None = Field(default=None, ge=0, description="Time budget per timed loop for this model.")
    input_size: int | None = Field(default=None, description="Input size for this model (None: the run's).")
    reason: str = Field(default="", description="Why the plan differs from the run's policy (shown and reported).")


class BenchConfig(BaseModel):
    """Everything a run was asked for. Field descriptions are the CLI's --help and the schema docs."""

    model_config = ConfigDict(extra="forbid")

    models: list[str] = Field(description="Model names (registry names, hf:<repo|folder>, ultralytics:<yaml|.pt>).")
    images: list[str] = Field(
        default_factory=list,
        description="Image files, folders or .txt lists; empty: the real photo that ships with ultralytics (bus.jpg).",
    )
    weights: str = Field(
        default="auto", description="auto (pretrained if cached, else random, said loudly), random or a path."
    )
    device: str = Field(default="auto", description="cpu, cuda, cuda:N, mps or auto (first accelerator found).")
    dtype: str = Field(default="float32", description="float32, float16 or bfloat16 (weights and inputs).")
    compile: bool = Field(default=False, description="Wrap the module in torch.compile before warmup.")
    channels_last: bool = Field(default=False, description="Convert module and 4-D inputs to channels_last.")
    input_size: int | None = Field(
        default=None, description="Square input size in pixels (None: each model's native size)."
    )
    batch_sizes: list[int] = Field(
        default=[1], description="Batch sizes to measure; an out-of-memory is that model's limit."
    )
    threads: int | None = Field(default=None, description="torch CPU threads in each worker (None: torch's default).")
    runs: int = Field(default=5, ge=1, description="Minimum timed repeats per loop.")
    budget_s: float = Field(default=10.0, ge=0, description="Keep repeating a loop until this many seconds are spent.")
    warmup: int = Field(default=1, ge=1, description="Untimed forwards before timing (at least one).")
    loop_cap_s: float | None = Field(
        default=None,
        description="Per timed loop: after 2 samples, do not start one that would end past this many seconds "
        "(None: always at least --runs). `run` sets 240 s so a 2-minute forward gets 2 samples.",
    )
    e2e: bool = Field(default=True, description="Also time end to end: decode + preprocess + forward + postprocess.")
    timeout_s: float | None = Field(
        default=None, description="Kill a model's worker after this many seconds (None: no limit)."
    )
    seed: int = Field(default=0, description="Seed for random weights and random inputs.")
    trust_remote_code: bool = Field(default=False, description="Allow remote code and pickled checkpoints.")
    baseline: str = Field(default="depthpro", description="Model that report ratios are computed against.")
    dissect: bool = Field(default=False, description="Dissect each model after benchmarking (visionbench run).")
    profile: bool = Field(
        default=False,
        description="Also time each component (visionbench.measure.profile): 2 x min(3, runs) more forwards.",
    )
    quick: bool = Field(default=False, description="The run was shortened with --quick (see `cuts`).")
    cuts: list[str] = Field(default_factory=list, description="What --quick or the suite plan cut, in words.")
    plans: dict[str, ModelPlan] = Field(default_factory=dict, description="Per-model overrides of the repeat policy.")

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
            budget_s=self.budget_s if p.budget_s is None else p.budget_s,
            input_size=p.input_size or self.input_size,
            reason=p.reason,
        )
