"""Atelier's user-facing layer: pipeline, CLI, report, plots and web app."""

from .config import AnalysisConfig, config_from_dict, load_config
from .pipeline import AnalysisResult, run_analysis

__all__ = ["AnalysisConfig", "AnalysisResult", "config_from_dict", "load_config", "run_analysis"]
