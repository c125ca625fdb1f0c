"""Session state of the web app: the images, the settings, the result, and running."""

from __future__ import annotations

import json
import os
import re
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import streamlit as st
from streamlit.runtime import Runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

from app.config import AnalysisConfig, changed_before_clustering, config_from_dict
from app.limits import LIMITS
from app.pipeline import AnalysisResult, recluster, run_analysis
from app.sessions import store_from_environment
from clustering import read_labels
from preprocessing import AtelierError, ImageSet, load_folder

__all__ = [
    "LIMITS",
    "samples_folder",
    "literal",
    "plural",
    "settings",
    "update_section",
    "remembered",
    "current_config",
    "images",
    "labels",
    "result",
    "run",
    "step_status",
    "out_of_date",
    "to_address",
    "restore_from_address",
    "set_images",
    "kept",
    "keep",
    "forget",
    "released",
    "STORE",
]

# One store per server process for every session's images, results and evidence:
# bounded in bytes, released when a browser has gone or sits idle (app/sessions.py).
# Streamlit's own session state holds only settings and small flags.
STORE = store_from_environment()
_PRUNER_STARTED = threading.Event()


def _session() -> str:
    """This browser session's key in the store: Streamlit's session id (what the pruner
    asks the server about) and a token of this session's own state (test harnesses
    give every app the same id)."""
    key = st.session_state.get("atelier_session")
    if key is None:
        ctx = get_script_run_ctx()
        key = f"{ctx.session_id if ctx is not None else 'bare'}/{uuid.uuid4().hex}"
        st.session_state["atelier_session"] = key
    return key


def _connected(session: str) -> bool:
    streamlit_id = session.split("/")[0]
    return Runtime.exists() and Runtime.instance().is_active_session(streamlit_id)


def _close(session: str) -> None:
    """Shut a disconnected session down for good once its grace period is over.

    Streamlit keeps a closed browser's session for reconnection and later drops it
    without shutting it down, so the images it showed stay in its media store; closing
    it releases them. ``Runtime.close_session`` must run on the server's event loop.
    """
    runtime = Runtime.instance() if Runtime.exists() else None
    try:
        loop = runtime._get_async_objs().eventloop  # type: ignore[union-attr]
        loop.call_soon_threadsafe(
            runtime.close_session,  # type: ignore[union-attr]
            session.split("/")[0],
        )
    except (AttributeError, RuntimeError):
        pass  # another Streamlit: its own storage expiry applies


def _prune_forever() -> None:
    while True:
        time.sleep(5.0)
        try:
            STORE.prune(_connected, _close)
        except Exception:  # noqa: BLE001 - the pruner must outlive one bad pass
            continue


def _start_pruner() -> None:
    if not _PRUNER_STARTED.is_set():
        _PRUNER_STARTED.set()
        threading.Thread(target=_prune_forever, name="atelier-sessions", daemon=True).start()


def kept(key: str, default: Any = None) -> Any:
    """This session's value under ``key`` in the store (``default`` if none)."""
    _start_pruner()
    return STORE.get(_session(), key, default)


def keep(key: str, value: Any) -> None:
    """Keep ``value`` for this session (may release the least recently used others)."""
    _start_pruner()
    STORE.put(_session(), key, value)


def forget(key: str) -> None:
    STORE.pop(_session(), key)


def released() -> str:
    """Why this session's images and results were released ('' if they were not);
    asked once: the reason is forgotten after it has been shown."""
    reason = STORE.released(_session())
    STORE.acknowledge(_session())
    return reason


def samples_folder() -> Path:
    env = os.environ.get("ATELIER_SAMPLES")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "sample_artworks"


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$])")


def literal(text: object) -> str:
    """``text`` escaped so that Streamlit shows it as written: file names are data, not
    Markdown (an upload named ``_x_.png`` must not show as an italic *x*.png)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text))


def plural(count: int, word: str) -> str:
    """``1 image``, ``2 images``."""
    return f"{count} {word}{'' if count == 1 else 's'}"


def settings() -> dict[str, dict[str, Any]]:
    """The settings chosen on the pages, as config sections (kept across pages)."""
    if "settings" not in st.session_state:
        st.session_state["settings"] = {}
    return st.session_state["settings"]


def update_section(section: str, values: dict[str, Any]) -> None:
    """Lay the settings a page returned over its configuration section."""
    settings()[section] = {**settings().get(section, {}), **values}


def remembered(key: str, value: Any) -> str:
    """A widget key whose value starts from the saved settings: Streamlit forgets a
    widget's state on pages where it is not drawn, the settings do not."""
    if key not in st.session_state:
        st.session_state[key] = value
    return key


def current_config() -> AnalysisConfig:
    """The defaults with the pages' settings laid over them (raises ConfigError)."""
    base = AnalysisConfig().to_dict()
    for section, values in settings().items():
        if isinstance(base.get(section), dict):
            base[section] = {**base[section], **values}
        else:
            base[section] = values
    return config_from_dict(base)


def images() -> ImageSet | None:
    return kept("images")


def result() -> AnalysisResult | None:
    return kept("result")


def labels() -> dict[str, str] | None:
    """The ground truth (image id -> family) of the loaded folder, when it has one."""
    return st.session_state.get("labels")


def progress_to(bar: Any):  # noqa: ANN202 - a streamlit progress widget
    """A pipeline progress callback that moves ``bar`` (an ``st.progress`` widget)."""

    def report(stage: str, done: int, total: int) -> None:
        label = stage.replace(":", " ")
        bar.progress(min(1.0, done / max(total, 1)), text=f"{label}: {done} / {total}")

    return report


def run() -> None:
    """Run the analysis with the current settings (re-cluster only when only those changed)."""
    image_set = images()
    if image_set is None or len(image_set) == 0:
        st.error("Load images first (Images page).")
        return
    try:
        config = current_config()
    except AtelierError as err:
        st.error(f"The settings cannot be used: {literal(err)}")
        return
    previous = result()
    for key in ("full_resolution", "suggested_cut", "query_result", "downloads"):
        forget(key)  # drawn from the result being replaced
    bar = st.progress(0.0, text="starting")
    try:
        if (
            previous is not None
            and kept("result_images") is image_set
            and not changed_before_clustering(previous.config, config)
        ):
            keep("result", recluster(previous, config, labels=labels()))
        else:
            forget("result")  # the old result need not stay in memory beside the new
            keep(
                "result",
                run_analysis(image_set, config, progress=progress_to(bar), labels=labels()),
            )
            keep("result_images", image_set)
    except AtelierError as err:
        st.error(f"The analysis stopped: {literal(err)}. Change the settings named and run again.")
    finally:
        bar.empty()


def out_of_date(res: AnalysisResult) -> str:
    """Why the result on screen no longer matches the settings on screen ('' if it does)."""
    try:
        config = current_config()
    except AtelierError as err:
        return f"The settings on screen cannot be used ({literal(err)}); the result shown is older."
    if config.to_dict() == res.config.to_dict():
        return ""
    changed = changed_before_clustering(res.config, config)
    how = (
        "re-computes the changed stages"
        if changed
        else "re-clusters the same matrices (well under a second)"
    )
    what = ", ".join(changed) if changed else "clustering"
    return (
        f"Out of date: the {what} settings on screen differ from those of the result shown. "
        f"Run analysis {how}."
    )


def step_status() -> dict[str, bool]:
    """Which steps have something to show."""
    res = result()
    return {
        "Images": images() is not None,
        "Equalize": res is not None and res.equalization is not None,
        "Align": res is not None and res.aligned.method != "none",
        "Similarity": res is not None,
        "Clusters": res is not None,
    }


def to_address() -> None:
    """Keep what a reload needs in the page's address (its query parameters): the
    settings, the folder the images came from, and whether a result was shown. Uploaded
    files stay on the server, in this session's store; the address holds a random token
    that names them, so a reload within the closed session's grace period (the old
    session is kept that long) finds them."""
    wanted: dict[str, str] = {}
    if settings():
        wanted["settings"] = json.dumps(settings(), sort_keys=True, separators=(",", ":"))
    source = st.session_state.get("source")
    if source is not None and images() is not None:
        wanted["folder"] = source
        if result() is not None:
            wanted["run"] = "1"
    token = kept("upload_token")
    if token is not None and images() is not None:
        wanted["uploads"] = token
        if result() is not None:
            wanted["run"] = "1"
    for key in ("settings", "folder", "uploads", "run"):
        if key in wanted and st.query_params.get(key) != wanted[key]:
            st.query_params[key] = wanted[key]
        elif key not in wanted and key in st.query_params:
            del st.query_params[key]


def restore_from_address() -> tuple[str, str]:
    """On a session's first run, bring back what :func:`to_address` kept (after a reload):
    the settings, the images of the folder (read again from disk) or the uploaded files
    (still held by the closed session within its grace period), and the analysis (run
    again: features and pairs come from the disk cache). Returns what was restored
    and what could not be, for the page to say (both '' when the address held nothing)."""
    if st.session_state.get("address_read"):
        return "", ""
    st.session_state["address_read"] = True
    done, problems = [], []
    raw = st.query_params.get("settings")
    if raw:
        try:
            restored = json.loads(raw)
            if not isinstance(restored, dict) or not all(
                isinstance(v, dict) for v in restored.values()
            ):
                raise ValueError("not a table of sections")
            st.session_state["settings"] = restored
            current_config()  # raises when the address holds settings that cannot be used
            done.append("the settings")
        except (ValueError, AtelierError) as err:
            st.session_state["settings"] = {}
            problems.append(f"the settings in the address ({literal(err)}): the defaults apply")
    token = st.query_params.get("uploads")
    if token:
        owner = STORE.find("upload_token", token)
        held = (
            (None, None)
            if owner is None
            else (STORE.get(owner, "images"), STORE.get(owner, "upload_bytes"))
        )
        if held[0] is None or not held[1]:  # never held, or released since
            problems.append(
                "the uploaded files (the server no longer holds them: upload them again)"
            )
        else:
            set_images(held[0], uploaded=held[1])
            keep("upload_token", token)
            done.append(f"the {plural(len(images() or ()), 'uploaded image')}")
            if st.query_params.get("run") == "1":
                st.session_state["run_now"] = True
                done.append("the analysis (run again; cached features make it quick)")
    folder = st.query_params.get("folder")
    if folder:
        try:
            if not Path(folder).is_dir():
                raise AtelierError("no such folder on this machine now")
            set_images(load_folder(Path(folder)), Path(folder))
            done.append(f"the images of {literal(folder)}")
            if st.query_params.get("run") == "1":
                st.session_state["run_now"] = True
                done.append("the analysis (run again; cached features make it quick)")
        except AtelierError as err:
            problems.append(f"the images of {literal(folder)} ({literal(err)})")
    return ", ".join(done), "; ".join(problems)


def set_images(
    image_set: ImageSet, folder: Path | None = None, uploaded: dict[str, bytes] | None = None
) -> None:
    """Keep the images (and the folder's ``families.csv``, the ground truth, when it has
    one); for uploads, their bytes by SHA-256, so that exports hold the files themselves."""
    for key in (
        "result",
        "result_images",
        "full_resolution",
        "query_result",
        "downloads",
        "upload_token",
    ):
        forget(key)
    keep("images", image_set)
    keep("upload_bytes", uploaded or {})
    if uploaded:
        keep("upload_token", uuid.uuid4().hex)
    st.session_state["source"] = str(folder) if folder is not None else None
    st.session_state.pop("labels", None)
    truth = folder / "families.csv" if folder is not None else None
    if truth is not None and truth.is_file():
        try:
            st.session_state["labels"] = read_labels(truth)
        except AtelierError as err:
            st.warning(f"families.csv is not used: {literal(err)}")
