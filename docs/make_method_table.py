"""Write the method table of docs/clustering.md from the method registry.

Usage: python docs/make_method_table.py  (a test checks the page holds this table)
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clustering import METHODS  # noqa: E402
from clustering.methods import FEATURE_ONLY_LINKAGES  # noqa: E402

PAGE = Path(__file__).resolve().parent / "clustering.md"
START, END = "<!-- methods: start -->", "<!-- methods: end -->"


def method_table() -> str:
    """The registry as a Markdown table."""
    rows = [
        "| method | consumes | number of clusters | k criteria | linkages | shortlist mode "
        "| what it is |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, m in METHODS.items():
        k = "its own" if m.chooses_k else "k, or auto"
        if m.noise:
            k += " (noise = -1)"
        if m.cuts_threshold:
            k += ", or a similarity threshold"
        linkages = ", ".join(
            f"{x} (features)" if x in FEATURE_ONLY_LINKAGES else x for x in m.linkages
        )
        sparse = "no"
        if m.sparse:
            sparse = "yes, with a fixed k" if m.sparse_needs_k else "yes"
            if m.sparse_cut:
                sparse = "yes, with a threshold (average, complete or single linkage)"
        rows.append(
            f"| `{name}` | {' or '.join(m.consumes)} | {k} | {', '.join(m.criteria) or '-'} "
            f"| {linkages or '-'} | {sparse} | {m.summary} |"
        )
    return "\n".join(rows)


def main() -> None:
    text = PAGE.read_text(encoding="utf-8")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    PAGE.write_text(f"{head}{START}\n{method_table()}\n{END}{tail}", encoding="utf-8")


if __name__ == "__main__":
    main()
