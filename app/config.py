"""The analysis configuration: frozen dataclasses, TOML/JSON in and out."""

from __future__ import annotations

import dataclasses
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clustering import ClusteringConfig
from preprocessing import ConfigError, LoadConfig, PreprocessConfig
from preprocessing.parallel import check_scheduler
from similarity import METRICS, SimilarityConfig

__all__ = [
    "AnalysisConfig",
    "ReportConfig",
    "config_from_dict",
    "load_config",
    "merge_config_data",
    "read_config_data",
]


@dataclass(frozen=True)
class ReportConfig:
    """What the figures and the report show.

    Parameters
    ----------
    evidence_pairs : int
        How many of the most similar pairs within clusters, and across
        clusters, get a pair-evidence figure (0 for none).
    embedding : str
        The scatter plot's 2-D embedding: ``mds`` (of the distances),
        ``tsne``, or ``pca`` (of the features, for feature methods).
    evidence_side : int
        The longer side, in pixels, of the full-resolution pair views (B
        registered onto A from the originals; never enlarged): 256-8192.
    """

    evidence_pairs: int = 3
    embedding: str = "mds"
    evidence_side: int = 2048

    def __post_init__(self) -> None:
        n = self.evidence_pairs
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= 50:
            raise ConfigError(f"report.evidence_pairs must be an integer in [0, 50], got {n!r}")
        side = self.evidence_side
        if isinstance(side, bool) or not isinstance(side, int) or not 256 <= side <= 8192:
            raise ConfigError(
                f"report.evidence_side must be an integer in [256, 8192], got {side!r}"
            )
        if self.embedding not in ("mds", "tsne", "pca"):
            raise ConfigError(f"report.embedding must be mds, tsne or pca, got {self.embedding!r}")


_SECTIONS: dict[str, type] = {
    "load": LoadConfig,
    "preprocess": PreprocessConfig,
    "similarity": SimilarityConfig,
    "clustering": ClusteringConfig,
    "report": ReportConfig,
}


@dataclass(frozen=True)
class AnalysisConfig:
    """Everything that determines an analysis; written into every report.

    Parameters
    ----------
    load, preprocess, similarity, clustering
        The stages' configurations.
    random_state : int
        The one seed that reaches every random step.
    n_jobs : int or None
        Worker processes for every stage that fans out (equalization,
        alignment, features, pairs); ``None`` uses every core, 1 runs
        everything in this process. With ``scheduler = "local"``: the number
        of Dask workers.
    scheduler : str or None
        ``None`` (a local process pool), ``"local"`` (a Dask ``LocalCluster``
        on 127.0.0.1, with Dask's dashboard) or ``"tcp://HOST:PORT"`` (the
        Dask cluster whose scheduler listens there). Where the work runs never
        changes the results.
    """

    load: LoadConfig = field(default_factory=LoadConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    similarity: SimilarityConfig = field(default_factory=SimilarityConfig)
    clustering: ClusteringConfig = field(default_factory=ClusteringConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    random_state: int = 0
    n_jobs: int | None = None
    scheduler: str | None = None

    def __post_init__(self) -> None:
        check_scheduler(self.scheduler)
        rs = self.random_state
        if isinstance(rs, bool) or not isinstance(rs, int) or not 0 <= rs < 2**32:
            raise ConfigError(f"random_state must be an integer in [0, 2**32), got {rs!r}")
        if self.report.embedding == "pca" and self.clustering.feature_source() is None:
            raise ConfigError(
                "report.embedding 'pca' needs a feature method (clustering.features); "
                "use mds or tsne"
            )
        source = self.clustering.features
        vector_metrics = sorted(n for n, m in METRICS.items() if m.vector_features)
        if source is not None and source not in ("mds", "pca", *vector_metrics):
            raise ConfigError(
                f"clustering.features {source!r} is not available; valid: mds, pca, "
                + ", ".join(vector_metrics)
            )
        if source is not None and source in vector_metrics:
            self.metric(source).check_ready()
        jobs = self.n_jobs
        if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
            raise ConfigError(f"n_jobs must be a positive integer or unset, got {jobs!r}")

    def metric(self, name: str):  # noqa: ANN201 - returns a Metric
        """The metric ``name`` as this analysis computes it: its configured parameters,
        and the run's ``random_state`` as the seed of its random steps."""
        return self.similarity.metric(name, random_state=self.random_state)

    def to_dict(self) -> dict[str, Any]:
        """A JSON/TOML-ready dict (tuples become lists)."""
        return _plain(dataclasses.asdict(self))

    def replace(self, **sections: Any) -> AnalysisConfig:
        """A copy with whole sections or fields of sections replaced.

        ``cfg.replace(clustering={"method": "agglomerative"}, random_state=3)``
        """
        data = self.to_dict()
        for key, value in sections.items():
            if key in _SECTIONS and isinstance(value, Mapping):
                data[key] = {**data[key], **dict(value)}
            elif key in _SECTIONS and dataclasses.is_dataclass(value):
                data[key] = _plain(dataclasses.asdict(value))  # type: ignore[arg-type]
            else:
                data[key] = value
        return config_from_dict(data)


#: Settings that never change the matrices: when only these differ, re-clustering the
#: matrices is enough (``app.pipeline.recluster``; the web app's Run analysis).
CLUSTERING_ONLY = ("clustering", "report", "n_jobs", "scheduler")


def changed_before_clustering(old: AnalysisConfig, new: AnalysisConfig) -> list[str]:
    """The settings of ``new`` that differ from ``old`` and change the matrices (sorted).

    Empty when only the clustering (or the report, or where the work runs) changed.
    ``random_state`` counts: it seeds the metrics' RANSAC as well as the clustering.
    """
    a, b = old.to_dict(), new.to_dict()
    return sorted(k for k in b if k not in CLUSTERING_ONLY and a.get(k) != b[k])


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _build(section: str, cls: type, data: Any) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"[{section}] must be a table of settings, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"unknown key(s) {', '.join(f'{section}.{k}' for k in unknown)}; "
            f"valid keys in [{section}]: {', '.join(sorted(names))}"
        )
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as err:
        raise ConfigError(f"[{section}]: {err}") from err


def config_from_dict(data: Mapping[str, Any]) -> AnalysisConfig:
    """Build an :class:`AnalysisConfig` from nested plain data.

    Raises
    ------
    ConfigError
        Naming the unknown key, or the key with a wrong type or value.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"configuration must be a table, got {type(data).__name__}")
    allowed = set(_SECTIONS) | {"random_state", "n_jobs", "scheduler"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(
            f"unknown key(s) {', '.join(unknown)}; "
            f"valid top-level keys: {', '.join(sorted(allowed))}"
        )
    sections = {name: _build(name, cls, data.get(name, {})) for name, cls in _SECTIONS.items()}
    return AnalysisConfig(
        **sections,
        random_state=data.get("random_state", 0),
        n_jobs=data.get("n_jobs"),
        scheduler=data.get("scheduler"),
    )


def read_config_data(path: str | Path) -> dict[str, Any]:
    """Parse a ``.toml`` or ``.json`` configuration file into plain data (not validated).

    Raises
    ------
    ConfigError
        If the file cannot be read or parsed.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{p}: cannot read configuration ({err.strerror or err})") from err
    try:
        data = json.loads(text) if p.suffix.lower() == ".json" else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(
            f"{p}: not valid {p.suffix.lstrip('.').upper() or 'TOML'}: {err}"
        ) from err
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: the configuration must be a table")
    return data


def merge_config_data(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` laid over it, section by section (plain data)."""
    out = {k: dict(v) if isinstance(v, Mapping) else v for k, v in base.items()}
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def load_config(path: str | Path, changes: Mapping[str, Any] | None = None) -> AnalysisConfig:
    """Read a configuration file, lay ``changes`` over it, then validate once.

    Raises
    ------
    ConfigError
        If the file cannot be read or parsed, or holds an invalid setting.
    """
    data = merge_config_data(read_config_data(path), changes or {})
    try:
        return config_from_dict(data)
    except ConfigError as err:
        raise ConfigError(f"{Path(path)}: {err}") from err
