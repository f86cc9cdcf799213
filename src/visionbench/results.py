"""The result schema of a benchmark run (run.json), versioned, plus atomic load/save.

Records only: measurements are data, renderers (markdown, HTML, terminal) read them. Every figure
carries its unit in its name (`_ms`, `_s`, `_bytes`, `_per_s`). A run folder looks like:

    runs/20261124_193000/
      run.json        RunResult (this module), rewritten atomically after every model
      summary.csv     one row a model (report.summary_csv)
      report.md/html  the report (report.write_run_files while running, report.build_report at the end)
      <model>/        per-model files: result.json (ModelResult), worker.log, dissection output

Compatibility: `SCHEMA_VERSION` is "MAJOR.MINOR". Readers accept any file of the same MAJOR and ignore
fields they do not know (a newer MINOR added them, with defaults); a different MAJOR is refused.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from visionbench.config import BenchConfig
from visionbench.errors import BadInputError
from visionbench.files import write_text

SCHEMA_VERSION = "1.3"
RUN_FILE = "run.json"
MODEL_FILE = "result.json"

T = TypeVar("T", bound=BaseModel)
Status = Literal["ok", "failed", "timeout", "oom", "interrupted"]


class LatencyStats(BaseModel):
    """Statistics of one timed loop; `samples_ms` keeps every sample in the order measured."""

    kind: Literal["model", "end_to_end"] = Field(
        description="model: forward on prepared tensors; end_to_end: decode + preprocess + forward + postprocess."
    )
    batch_size: int = Field(description="Images per call.")
    samples_ms: list[float] = Field(description="Every timed call, milliseconds, in order.")
    count: int = Field(description="Number of samples.")
    mean_ms: float = Field(description="Arithmetic mean of the samples.")
    std_ms: float = Field(description="Sample standard deviation (ddof=1; 0 for a single sample).")
    median_ms: float = Field(description="Median of the samples: the headline latency.")
    p90_ms: float = Field(description="90th percentile (linear interpolation, numpy's default).")
    p99_ms: float
    min_ms: float = Field(description="Fastest sample.")
    max_ms: float = Field(description="Slowest sample.")
    total_s: float = Field(description="Sum of the samples, seconds.")
    fps: float = Field(description="Calls per second at the median latency: 1000 / median_ms.")
    throughput_images_per_s: float = Field(description="Sustained images per second: batch_size * count / total_s.")
    warmup_calls: int = Field(0, description="Untimed calls before the first sample.")
    warmup_ms: list[float] = Field(
        default_factory=list, description="Duration of each warmup call (the first is the cold call)."
    )
    stop_reason: str = Field(
        "", description="Why the loop stopped: minimum runs reached and budget spent, or max runs."
    )
    phases_ms: dict[str, list[float]] | None = Field(
        None,
        description="end_to_end only: per-sample time of each phase (decode, preprocess, forward, postprocess).",
    )
    source: str = Field(
        "model loop",
        description="Where the samples come from: 'model loop', 'end-to-end loop' or, in the one-loop plan of a "
        "slow model, 'end-to-end loop forward phase' (+ 'counted warmup'). Added in 1.3.",
    )
    counted_warmup: int = Field(
        0,
        description="Warmup forwards counted as samples (first in samples_ms): only on a CPU for forwards of "
        "seconds, where first-call overhead is a negligible share. Added in 1.3.",
    )


class MemoryStats(BaseModel):
    """Memory of one worker process. CPU: resident set (RSS); CUDA: the caching allocator's counters."""

    device_type: str = Field(description="cpu, cuda or mps: which counters below are filled.")
    method: str = Field(
        description="How the peak was read, e.g. 'VmHWM after clear_refs' or 'cuda max_memory_allocated'."
    )
    baseline_rss_bytes: int | None = Field(None, description="Worker RSS after imports, before building the model.")
    after_load_rss_bytes: int | None = Field(None, description="Worker RSS once the model is built and on its device.")
    load_peak_rss_bytes: int | None = Field(None, description="Highest RSS while building/loading the model.")
    run_peak_rss_bytes: int | None = Field(None, description="Highest RSS while warming up and timing.")
    cuda_after_load_allocated_bytes: int | None = Field(
        None, description="torch.cuda.memory_allocated once the model is loaded."
    )
    cuda_peak_allocated_bytes: int | None = Field(
        None, description="torch.cuda.max_memory_allocated after a reset before warmup."
    )
    cuda_peak_reserved_bytes: int | None = Field(
        None, description="torch.cuda.max_memory_reserved (what nvidia-smi sees, roughly)."
    )
    after_load_bytes: int | None = Field(
        None, description="Headline: memory held by the loaded model (CPU: above baseline)."
    )
    peak_bytes: int | None = Field(
        None, description="Headline: peak while running (CPU: RSS above baseline; CUDA: peak allocated)."
    )
    after_cleanup_bytes: int | None = Field(
        None,
        description="Held once this batch size's inputs and outputs are freed and garbage collected (CPU: RSS above "
        "baseline; CUDA: allocated). Added in 1.3.",
    )


class BatchResult(BaseModel):
    """Everything measured at one batch size."""

    batch_size: int = Field(description="Images per forward.")
    status: Status = Field(description="ok, or oom (this batch size is the model's limit), or failed.")
    error: str | None = Field(None, description="Why this batch size did not run (one line).")
    model_latency: LatencyStats | None = Field(None, description="Forward on prepared tensors.")
    e2e_latency: LatencyStats | None = None
    memory: MemoryStats | None = Field(None, description="Memory while warming up and timing this batch size.")
    flops: int | None = Field(None, description="FLOPs of one forward at this batch size (2 per multiply-add).")
    achieved_flops_per_s: float | None = Field(None, description="flops / median model latency.")
    utilisation: float | None = Field(
        None,
        description="achieved_flops_per_s / the worker's measured matmul peak (ModelResult.peak: the better of the "
        "probes before and after the model).",
    )
    utilisation_datasheet: float | None = Field(
        None, description="achieved_flops_per_s / the datasheet peak, when the device is known."
    )


class DevicePeak(BaseModel):
    """What the device can do in the run's dtype: a matmul measured in the worker, and the datasheet's figure.

    Utilisation is a model's achieved FLOP/s against these; a model far below the measured peak is
    either memory-bound (few FLOPs per byte moved) or spends its time outside large matmuls.
    """

    device: str = Field(description="Device name: the GPU's name, or the CPU model.")
    dtype: str = Field(description="dtype of the probe (the run's dtype).")
    threads: int | None = Field(None, description="torch CPU threads during the probe.")
    matmul_flops_per_s: float = Field(description="Median FLOP/s of a square matmul (2 FLOP per multiply-add).")
    matmul_size: int = Field(description="Side of the square matrices multiplied.")
    matmul_samples: int = Field(description="Timed matmuls behind the median.")
    matmul_after_flops_per_s: float | None = Field(
        None,
        description="The same probe after the model's loops, where they took 30 s or more; utilisation is against the "
        "better of the two, since a shared machine's speed drifts while a model runs. Added in 1.3.",
    )
    copy_bytes_per_s: float | None = Field(
        None, description="Median bytes/s of a device-to-device tensor copy (read + write)."
    )
    datasheet_flops_per_s: float | None = Field(
        None, description="The vendor's dense peak for this dtype, when the device is in the table."
    )
    datasheet_name: str | None = Field(None, description="The datasheet entry matched (e.g. H100 SXM).")

    @property
    def best_flops_per_s(self) -> float:
        """The measured peak utilisation is taken against: the better of the probes before and after the model."""
        return max(self.matmul_flops_per_s, self.matmul_after_flops_per_s or 0.0)


class ContentionStats(BaseModel):
    """CPU time other processes used while a model's timed loops ran (visionbench.measure.contention).

    Figures taken while other work shared the cores are slower than the model is: the report flags them.
    """

    wall_s: float = Field(description="Seconds of timed loops measured.")
    cores: int = Field(description="Logical cores of the machine.")
    own_cores: float = Field(description="CPU seconds of the worker and its children per wall second.")
    other_cores: float = Field(description="CPU seconds of every other process (and VM steal) per wall second.")
    other_share: float = Field(description="other_cores / cores (0..1).")
    contended: bool = Field(description="other_cores >= a quarter of the cores: the figures were taken shared.")
    method: str = Field("", description="How it was measured.")


class VariantResult(BaseModel):
    """One variant of the model (a dtype, compile, channels-last, ...) timed after the main measurement. Added in 1.3.

    Speed-up and accuracy cost are against the run's own float32 eager figure and outputs on the same input.
    """

    name: str = Field(description="Variant name, e.g. bfloat16, channels-last, compile, fast. Added in 1.3.")
    status: Literal["ok", "not_applicable", "skipped", "failed", "oom"] = Field(
        description="ok; not_applicable (cannot apply on this device or model); skipped (the run's time rule); "
        "failed or oom (it raised). Added in 1.3."
    )
    reason: str | None = Field(None, description="Why it did not run, in words. Added in 1.3.")
    applied: list[str] = Field(
        default_factory=list, description="What the variant changed (for `fast`: each piece it applied). Added in 1.3."
    )
    batch_size: int | None = Field(None, description="Batch size timed (the run's smallest). Added in 1.3.")
    latency: LatencyStats | None = Field(None, description="The variant's forward loop. Added in 1.3.")
    baseline_ms: float | None = Field(None, description="The main measurement's median forward. Added in 1.3.")
    speedup: float | None = Field(None, description="baseline_ms / the variant's median. Added in 1.3.")
    compile_s: float | None = Field(
        None, description="First call (compilation, graph capture, warmup) in seconds. Added in 1.3."
    )
    accuracy: dict[str, float | None] = Field(
        default_factory=dict,
        description="Accuracy cost against the main outputs: depth max_rel, mean_rel, abs_rel; detection "
        "box_match_iou90 (share of reference boxes matched at IoU >= 0.9, same class); masks mask_iou. Added in 1.3.",
    )
    max_batch_size: int | None = Field(
        None, description="fast preset on a GPU: the largest batch that ran in the search. Added in 1.3."
    )
    oom_batch_size: int | None = Field(
        None, description="fast preset: the smallest batch that ran out of memory. Added in 1.3."
    )


class WeightsRecord(BaseModel):
    """Where a model's weights came from; reports repeat it."""

    mode: Literal["pretrained", "random"] = Field(
        description="random: speed, memory and FLOPs are valid; outputs are not."
    )
    source: str = Field(description="Where the weights came from (hub cache, file, random init with its seed).")
    warning: str | None = Field(None, description="Set when `auto` fell back to random weights.")
    revision: str | None = Field(
        None, description="Hub commit of the snapshot used, or the release tag of a downloaded file."
    )
    files: dict[str, str] = Field(
        default_factory=dict, description="Each weights/config file read (path) -> its SHA-256 (hex)."
    )


class DissectionRef(BaseModel):
    """Where the dissection of this model (issue 5) was written, and its headline facts."""

    path: str = Field(description="Folder, relative to the run folder, holding layers.json and pictures.")
    summary: dict[str, Any] = Field(default_factory=dict)
    error: str | None = Field(None, description="Why the dissection failed (the benchmark figures stand).")


OTHER = "other (glue)"  # the profile's row for the time outside every component


class ComponentProfile(BaseModel):
    """One component's share of a forward pass."""

    label: str = Field(description="Component name, e.g. 'patch encoder'; 'other (glue)' for the rest.")
    prefixes: list[str] = Field(description="Module paths of the component's roots.")
    calls: int = Field(description="Root-module calls in one forward pass.")
    time_ms: float = Field(description="Exclusive time per forward (mean over the middle-half runs), milliseconds.")
    time_share: float = Field(description="time_ms / hooked_ms (0..1; the rows add up to 1).")
    time_ms_samples: list[float] = Field(description="Exclusive time in each timed run, milliseconds.")
    flops: int = Field(description="FLOPs of the component in one forward (2 per multiply-add).")
    flop_share: float = Field(description="flops / the forward's total FLOPs (0..1).")
    params: int = Field(description="Parameters under the component's prefixes.")
    param_share: float = Field(description="params / all parameters (0..1).")


class ProfileResult(BaseModel):
    """Where the time, FLOPs and parameters of one forward pass go, component by component.

    Produced by `visionbench.measure.profile`; stored as `ModelResult.profile` by `bench --profile`.
    """

    model: str
    task: str
    device: str
    dtype: str
    input_size: int
    batch_size: int
    input_shapes: dict[str, list[int]] = Field(description="Shape of each model input.")
    weights_mode: str = Field(description="'pretrained' or 'random' (timing and FLOPs are valid either way).")
    runs: int = Field(description="Timed runs (each: one plain and one hooked forward).")
    warmup: int = Field(description="Untimed warmup runs before timing.")
    method: str = Field("", description="How the figures were measured.")
    forward_ms: float = Field(description="Median time of a plain forward (no hooks), milliseconds.")
    forward_ms_samples: list[float]
    hooked_ms: float = Field(description="Hooked forward, mean over the middle-half runs: the total of the rows, ms.")
    hooked_ms_samples: list[float]
    hook_overhead: float = Field(description="hooked_ms / forward_ms - 1: what the synchronising hooks cost.")
    noise: float = Field(description="Interquartile range / median of the hooked totals: timing noise of the runs.")
    used_runs: list[int] = Field(description="Indices of the runs averaged (the middle half by hooked total).")
    params: int
    flops: int
    components: list[ComponentProfile] = Field(description="Components in model order, then 'other (glue)'.")

    def shares(self) -> dict[str, float]:
        return {c.label: c.time_share for c in self.components}


class ProfileFailure(BaseModel):
    """A component profile that raised: the benchmark figures stand, the reason is kept."""

    error: str = Field(description="Why the profile failed (one line).")


class ModelResult(BaseModel):
    """One model of a run: identity, how it was built, and every figure measured."""

    # assignments are validated too: the worker fills fields one by one, and a profile handed over as a
    # dict becomes the typed record here, once, not in every reader
    model_config = ConfigDict(validate_assignment=True)

    name: str = Field(description="Name as asked for (registry name or open door).")
    status: Status = Field(
        description="ok; failed (raised); timeout (--timeout); oom (at the first batch size); interrupted (Ctrl-C)."
    )
    error: str | None = Field(None, description="One-line reason when status is not ok.")
    partial: bool = Field(
        False,
        description="Stopped before it finished (timeout, out of memory, crash), with the figures measured until "
        "then kept in the other fields. Added in 1.2.",
    )
    partial_reason: str | None = Field(
        None, description="What stopped a partial result, e.g. 'timeout after 1800 s'. Added in 1.2."
    )
    card: dict[str, Any] = Field(default_factory=dict, description="The model card's facts (ModelCard.model_dump()).")
    weights: WeightsRecord | None = Field(None, description="Where the weights came from.")
    device: str = Field("", description="Device the model ran on, e.g. cpu or cuda:0.")
    dtype: str = Field("", description="Parameter and input dtype.")
    input_size: int | None = Field(None, description="Square input size in pixels of the prepared tensors.")
    compile: bool = False
    channels_last: bool = False
    variant: str | None = Field(
        None,
        description="The form the module ran in where a family has several: 'fused' (YOLO's Conv+BN folded, as "
        "ultralytics' predictor runs it) or 'unfused'; `params` counts that form, the card the published one. "
        "Added in 1.2.",
    )
    threads: int | None = Field(None, description="torch.get_num_threads() in the worker.")
    peak: DevicePeak | None = Field(
        None,
        description="The device's peak in this dtype, measured in this worker before the model. Added in 1.3.",
    )
    plan: dict[str, Any] = Field(
        default_factory=dict,
        description="Effective repeat policy: runs, warmup, budget_s, reason; since 1.3 also loops (1: the slow "
        "one-loop plan), counted_warmup and plan_reason (why the worker chose that plan).",
    )
    contention: ContentionStats | None = Field(
        None, description="Other processes' CPU use during the timed loops. Added in 1.3."
    )
    import_time_s: float | None = Field(None, description="Importing the model's library (before the memory baseline).")
    load_time_s: float | None = Field(None, description="Cold build + weights + move to device, as a user sees it.")
    params: int | None = Field(None, description="Parameters of the built module, counted.")
    weights_bytes: int | None = Field(
        None, description="Bytes of the module's parameters and buffers as run (dtype included). Added in 1.3."
    )
    output_pictures: list[str] = Field(
        default_factory=list,
        description="Pictures of the first image's prediction (depth colourised, detections drawn), relative to the "
        "run folder. Added in 1.3.",
    )
    flops: int | None = Field(None, description="FLOPs of one forward at batch size 1.")
    batches: list[BatchResult] = Field(default_factory=list)
    max_batch_size: int | None = Field(None, description="Largest batch size that ran.")
    oom_batch_size: int | None = Field(None, description="Smallest batch size that ran out of memory.")
    output_summary: list[dict[str, Any]] = Field(
        default_factory=list, description="Prediction.summary() of each image."
    )
    images: list[str] = Field(default_factory=list, description="Images used for end-to-end timing.")
    skipped_images: list[str] = Field(default_factory=list, description="Unreadable images, with the reason.")
    dissection: DissectionRef | None = Field(
        None, description="Layer dissection written after benchmarking (visionbench run)."
    )
    profile: ProfileResult | ProfileFailure | None = Field(
        None, description="Component timing breakdown (visionbench.measure.profile), or why it failed."
    )
    variants: list[VariantResult] = Field(
        default_factory=list,
        description="Variants timed after the main measurement (--variants, --preset fast), including those not "
        "applicable, with the reason. Added in 1.3.",
    )
    wall_time_s: float | None = Field(None, description="Whole worker, start to finish.")
    folder: str = Field("", description="Per-model folder, relative to the run folder.")
    finished_at: str | None = Field(None, description="UTC time the worker finished (ISO 8601).")

    def batch(self, batch_size: int = 1) -> BatchResult | None:
        return next((b for b in self.batches if b.batch_size == batch_size), None)

    @property
    def primary(self) -> BatchResult | None:
        """The smallest batch size that ran: what tables and ranks use."""
        ok = [b for b in self.batches if b.status == "ok"]
        return min(ok, key=lambda b: b.batch_size) if ok else None


class GpuInfo(BaseModel):
    """One CUDA device as torch sees it."""

    name: str = Field(description="GPU name as the driver reports it.")
    total_memory_bytes: int = Field(description="Total device memory.")
    capability: str = Field(description="CUDA compute capability, e.g. 9.0.")


class Environment(BaseModel):
    """Where a run happened, so two runs can be compared."""

    os: str = Field(description="Operating system, release and platform string.")
    python: str = Field(description="Python version.")
    hostname: str = Field(description="Machine name.")
    cpu_model: str = Field(description="CPU model name (/proc/cpuinfo, sysctl or platform).")
    cpu_cores_physical: int | None = Field(description="Physical cores (psutil).")
    cpu_cores_logical: int | None = Field(description="Logical cores (psutil).")
    memory_total_bytes: int | None = Field(description="Total system memory.")
    torch_threads: int = Field(description="torch.get_num_threads() of the process that started the run.")
    torch_interop_threads: int = Field(description="torch.get_num_interop_threads().")
    device: str = Field(description="Resolved device of the run, e.g. cpu or cuda:0.")
    gpus: list[GpuInfo] = Field(default_factory=list)
    cuda_version: str | None = Field(None, description="CUDA version torch was built with.")
    cudnn_version: int | None = Field(None, description="cuDNN version.")
    gpu_driver: str | None = Field(None, description="NVIDIA driver version (nvidia-smi).")
    versions: dict[str, str | None] = Field(
        description="torch, torchvision, transformers, ultralytics, visionbench, numpy."
    )
    git_revision: str | None = Field(
        None, description="visionbench checkout's commit (+ '-dirty'), when it is a checkout."
    )
    seed: int = Field(description="Seed for random weights and inputs.")
    weights_modes: dict[str, str] = Field(default_factory=dict, description="Model -> pretrained | random.")
    flush_denormal: bool = Field(
        True, description="Workers flush denormal floats to zero on CPU (torch.set_flush_denormal)."
    )
    malloc: str = Field(
        "system default",
        description="C allocator setting of the workers: glibc mmap/trim thresholds raised so freed activations "
        "stay mapped (measure/allocator.py; VISIONBENCH_MALLOC_TUNING=0 turns it off), or the system default. "
        "Added in 1.1.",
    )
    load_average: list[float] | None = Field(None, description="1/5/15-minute load average at the start: contention.")


class RunResult(BaseModel):
    """run.json: a whole run."""

    schema_version: str = Field(SCHEMA_VERSION, description="MAJOR.MINOR of this schema.")
    tool: str = Field("visionbench", description="Program that wrote the file.")
    run_id: str = Field(description="The run folder's name, YYYYMMDD_HHMMSS.")
    status: Literal["running", "complete", "interrupted"] = Field(
        "running", description="running while models remain; interrupted after Ctrl-C (resumable)."
    )
    started_at: str = Field(description="UTC start time (ISO 8601).")
    finished_at: str | None = Field(None, description="UTC end time (ISO 8601).")
    command: str = Field("", description="The command line that produced the run.")
    config: BenchConfig = Field(description="What the run was asked for.")
    environment: Environment = Field(description="Where it ran.")
    first_estimate_s: float | None = Field(
        None,
        description="The suite's first estimate of its models' time, seconds (from this machine's matmul probe "
        "and the models' FLOPs; bench/eta.py), to compare with the wall time. Added in 1.3.",
    )
    models: list[ModelResult] = Field(default_factory=list)

    def result(self, name: str) -> ModelResult | None:
        return next((m for m in self.models if m.name == name), None)

    def upsert(self, result: ModelResult) -> None:
        """Replace the model's earlier result (a resumed retry) or append it."""
        self.models = [m for m in self.models if m.name != result.name] + [result]
        order = {n: i for i, n in enumerate(self.config.models)}
        self.models.sort(key=lambda m: order.get(m.name, len(order)))


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def save_run(run: RunResult, run_dir: str | Path) -> Path:
    """Write `run_dir/run.json` atomically and durably; returns its path."""
    return write_text(Path(run_dir) / RUN_FILE, run.model_dump_json(indent=2), durable=True)


def load_run(run_dir: str | Path) -> RunResult:
    """Read a run folder (or its run.json); a clear BadInputError for anything that is not one."""
    path = Path(run_dir)
    if path.is_dir():
        path = path / RUN_FILE
    if not path.exists():
        raise BadInputError(f"{path.parent}: not a visionbench run folder (no {RUN_FILE})")
    return _read(RunResult, path)


def save_model_result(result: ModelResult, path: str | Path) -> None:
    write_text(path, result.model_dump_json(indent=2), durable=True)


def load_model_result(path: str | Path) -> ModelResult:
    return _read(ModelResult, Path(path))


def _read(record: type[T], path: Path) -> T:
    """One record from JSON: same MAJOR version only (when the file says), unknown fields ignored."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInputError(f"{path}: unreadable {record.__name__} file ({exc})") from exc
    if not isinstance(data, dict):
        raise BadInputError(f"{path}: does not match the {record.__name__} schema (not a JSON object)")
    version = str(data.get("schema_version", SCHEMA_VERSION if record is not RunResult else ""))
    if version.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
        raise BadInputError(
            f"{path}: schema version {version or '?'} is not readable by this visionbench ({SCHEMA_VERSION})"
        )
    try:
        return record.model_validate(data, extra="ignore")  # newer minor versions add fields: skip them
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise BadInputError(f"{path}: does not match the {record.__name__} schema: {where}: {first['msg']}") from None


def run_json_schema() -> dict[str, Any]:
    """The JSON Schema of run.json (docs/results-schema.md is generated from it)."""
    return RunResult.model_json_schema()
