"""The model card: the facts every output about a model reuses (timm's PretrainedCfg, as pydantic)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Task = Literal["depth-metric", "depth-relative", "detect", "segment", "pose", "promptable-segment"]


class ModelCard(BaseModel):
    """Static facts about one registered model. Figures here are exact properties, never measurements."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(description="Registry name, e.g. 'depthpro'.")
    task: Task = Field(description="What the model predicts.")
    library: Literal["transformers", "ultralytics"] = Field(description="Library that builds the nn.Module.")
    architecture: str = Field(description="Class (or yaml) that defines the architecture.")
    params: int | None = Field(description="Exact parameter count of the full-size architecture (None: not pinned).")
    input_size: int = Field(description="Native square input size in pixels.")
    mean: tuple[float, float, float] = Field(description="Per-channel normalisation mean on [0, 1] pixels.")
    std: tuple[float, float, float] = Field(description="Per-channel normalisation std on [0, 1] pixels.")
    license: str = Field(description="License of the pretrained weights.")
    paper: str | None = Field(default=None, description="Paper or documentation URL.")
    weights_source: str | None = Field(
        default=None, description="Where pretrained weights come from: a hub repo id or a file name."
    )
    description: str = Field(default="", description="One line for tables.")
    hidden: bool = Field(default=False, description="Tiny test variants: usable by name, listed only with --all.")
