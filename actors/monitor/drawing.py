"""Geometry of the two pictures the pages draw as inline SVG: the outcome chart of the
dashboard and the workflow graph of a task. Pure: numbers in, shapes out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

_BAR = 24
_CHART_HEIGHT = 100
NODE_WIDTH = 190
NODE_HEIGHT = 30
_COLUMN = 240
_ROW = 42


def outcome_bars(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Stacked bars (succeeded, failed, retried) per minute, scaled to the busiest minute."""
    top = max((r["succeeded"] + r["failed"] + r["retried"] for r in rows), default=0) or 1
    bars = []
    for i, row in enumerate(rows):
        y = float(_CHART_HEIGHT)
        parts = []
        for kind in ("succeeded", "failed", "retried"):
            height = row[kind] / top * _CHART_HEIGHT
            y -= height
            if row[kind]:
                parts.append({"kind": kind, "y": round(y, 1), "height": round(height, 1)})
        bars.append({"x": i * _BAR, "width": _BAR - 4, "parts": parts, **row})
    return {"bars": bars, "width": len(rows) * _BAR, "height": _CHART_HEIGHT, "top": top}


def workflow_graph(tasks: Sequence[Mapping[str, Any]], focus: str) -> dict[str, Any]:
    """Boxes and arrows for a workflow: one column per step from the root (a task's column is
    its parent's plus one), chord members joined to their body by dashed arrows."""
    by_id = {t["id"]: t for t in tasks}
    depth: dict[str, int] = {}

    def column(task_id: str, seen: frozenset[str] = frozenset()) -> int:
        if task_id not in depth:
            parent = by_id[task_id].get("parent_id") or ""
            ok = parent in by_id and parent not in seen and parent != task_id
            depth[task_id] = column(parent, seen | {task_id}) + 1 if ok else 0
        return depth[task_id]

    rows: dict[int, int] = {}
    nodes = []
    place: dict[str, tuple[int, int]] = {}
    for task in tasks:
        col = column(task["id"])
        row = rows.get(col, 0)
        rows[col] = row + 1
        place[task["id"]] = (col * _COLUMN + 10, row * _ROW + 10)
        nodes.append(
            {
                **task,
                "x": place[task["id"]][0],
                "y": place[task["id"]][1],
                "focus": task["id"] == focus,
            }
        )
    edges = []
    members: dict[str, list[str]] = {}
    for task in tasks:
        if task.get("chord"):
            members.setdefault(task["chord"], []).append(task["id"])
    for task in tasks:
        parent = task.get("parent_id") or ""
        if parent not in place or parent == task["id"]:
            continue
        chord = by_id[parent].get("chord") or ""
        sources = members[chord] if chord and task.get("chord") != chord else [parent]
        for source in sources:
            edges.append(_edge(place[source], place[task["id"]], dashed=len(sources) > 1))
    width = (max(rows, default=0) + 1) * _COLUMN
    height = max(rows.values(), default=1) * _ROW + 10
    return {"nodes": nodes, "edges": edges, "width": width, "height": height}


def _edge(start: tuple[int, int], end: tuple[int, int], dashed: bool) -> dict[str, Any]:
    return {
        "x1": start[0] + NODE_WIDTH,
        "y1": start[1] + NODE_HEIGHT // 2,
        "x2": end[0],
        "y2": end[1] + NODE_HEIGHT // 2,
        "dashed": dashed,
    }
