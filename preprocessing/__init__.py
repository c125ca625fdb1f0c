"""Image intake, validation and preparation of the work images."""

from ._decode import IMAGE_EXTENSIONS, SUPPORTED_FORMATS
from .config import LoadConfig, PreprocessConfig
from .errors import (
    AlignmentError,
    AtelierError,
    ClusteringError,
    ConfigError,
    ImageLoadError,
    MatrixError,
    NoUsableImageError,
)
from .load import (
    ImageMeta,
    ImageRecord,
    ImageSet,
    SkippedFile,
    load_folder,
    load_paths,
    load_uploads,
    sanitize_upload_name,
)
from .matrix import check_similarity_matrix, similarity_to_distance
from .work import AlignedSet, WorkImage, fit_to_canvas, make_work_image, rgb_to_gray

__all__ = [
    "IMAGE_EXTENSIONS",
    "SUPPORTED_FORMATS",
    "LoadConfig",
    "PreprocessConfig",
    "AtelierError",
    "AlignmentError",
    "ClusteringError",
    "ConfigError",
    "ImageLoadError",
    "MatrixError",
    "NoUsableImageError",
    "ImageMeta",
    "ImageRecord",
    "ImageSet",
    "SkippedFile",
    "load_folder",
    "load_paths",
    "load_uploads",
    "sanitize_upload_name",
    "check_similarity_matrix",
    "similarity_to_distance",
    "AlignedSet",
    "WorkImage",
    "fit_to_canvas",
    "make_work_image",
    "rgb_to_gray",
]
