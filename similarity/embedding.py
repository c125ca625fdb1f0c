"""Cosine similarity of vectors from a local ONNX model that the user supplies."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np

from preprocessing.errors import ConfigError

from .base import Metric

__all__ = ["Embedding"]

_SESSIONS: dict[tuple[str, str], Any] = {}
_LOCK = threading.Lock()


def _file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _session(path: str, sha256: str) -> Any:
    """One onnxruntime session per model file and process (CPU only, no downloads)."""
    key = (path, sha256)
    with _LOCK:
        if key not in _SESSIONS:
            try:
                import onnxruntime as ort
            except ImportError as err:
                raise ConfigError(
                    "the embedding metric needs onnxruntime: pip install 'atelier[onnx]'"
                ) from err
            options = ort.SessionOptions()
            options.intra_op_num_threads = 1  # parallelism comes from Atelier's workers
            _SESSIONS[key] = ort.InferenceSession(
                path, sess_options=options, providers=["CPUExecutionProvider"]
            )
        return _SESSIONS[key]


@dataclass(frozen=True)
class Embedding(Metric):
    """Cosine similarity of embeddings from a local ONNX model file.

    Nothing is downloaded: ``model`` is the path of an ONNX file the user
    supplies (``similarity.metric_params.embedding.model``); its SHA-256 is
    part of the metric's parameters, so cached features are never reused across different models.

    Features: the work image, resized to the model's input size (``size``
    when the model's input is dynamic), replicated to 3 channels if the model
    takes 3, scaled by ``mean`` and ``std`` (ImageNet's by default), run
    through the model; the first output is flattened and normalised to unit
    length.

    Raw score: the cosine ``c`` of the two embeddings, in [-1, 1]. Transform:
    ``similarity = (1 + c) / 2``, computed as ``1 - |a - b|^2 / 4`` so that
    identical inputs give exactly 1.0; symmetric, monotone in ``c``.

    References
    ----------
    ONNX Runtime, https://onnxruntime.ai (inference of a user-supplied model).
    """

    needs_model = True

    name: ClassVar[str] = "embedding"
    vector_features: ClassVar[bool] = True
    version: ClassVar[str] = "1"

    model: str = ""
    size: int = 224
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    model_sha256: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", tuple(self.mean))
        object.__setattr__(self, "std", tuple(self.std))
        if not self.model:
            return  # the registry's template; using it asks for a model (see extract)
        path = Path(self.model)
        if not path.is_file():
            raise ConfigError(f"embedding model {self.model!r}: no such file")
        object.__setattr__(self, "model", str(path.resolve()))
        object.__setattr__(self, "model_sha256", _file_sha256(str(path)))

    def _input(self, image: np.ndarray, session: Any) -> np.ndarray:
        spec = session.get_inputs()[0]
        shape = list(spec.shape)
        channels = shape[1] if len(shape) == 4 and isinstance(shape[1], int) else 3
        rows = shape[2] if len(shape) == 4 and isinstance(shape[2], int) else self.size
        cols = shape[3] if len(shape) == 4 and isinstance(shape[3], int) else self.size
        img = cv2.resize(np.asarray(image, np.float32), (cols, rows), interpolation=cv2.INTER_AREA)
        planes = [img] * channels
        mean = self.mean if channels == 3 else (float(np.mean(self.mean)),)
        std = self.std if channels == 3 else (float(np.mean(self.std)),)
        arr = np.stack([(p - m) / s for p, m, s in zip(planes, mean, std, strict=True)])
        return arr[None].astype(np.float32)

    def check_ready(self) -> None:
        if not self.model:
            raise ConfigError(
                "the embedding metric needs a model: set "
                "similarity.metric_params.embedding.model to an ONNX file"
            )
        try:
            import onnxruntime  # noqa: F401
        except ImportError as err:
            raise ConfigError(
                "the embedding metric needs onnxruntime: pip install 'atelier[onnx]'"
            ) from err

    def extract(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        self.check_ready()
        session = _session(self.model, self.model_sha256)
        feed = {session.get_inputs()[0].name: self._input(image, session)}
        out = np.asarray(session.run(None, feed)[0], np.float64).ravel()
        if not np.isfinite(out).all():
            raise ConfigError(f"embedding model {self.model} produced non-finite values")
        norm = float(np.linalg.norm(out))
        return out / norm if norm > 0 else out

    def compare(self, a: np.ndarray, b: np.ndarray) -> float:
        diff = a - b
        return float(min(1.0, max(0.0, 1.0 - float(diff @ diff) / 4.0)))
