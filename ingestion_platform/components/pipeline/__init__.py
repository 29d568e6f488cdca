"""Declarative YAML pipelines (docs/PIPELINES.md): ``type: ingestion_platform.components.pipeline.Pipeline``."""

from ingestion_platform.components.pipeline.component import Pipeline, PipelineConfig

__all__ = ["Pipeline", "PipelineConfig"]
