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
    its parent's plus one), chord members joined to their body by dashed arrows; the steps
    not sent yet (the tasks' ``chain`` and ``chord_body``) as pending boxes."""
    tasks = [*tasks, *pending_steps(tasks)]
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


def pending_steps(tasks: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The steps of the workflow not sent yet, as tasks with ``"pending": True``: the rest of
    each chain whose next step has not run, and the body of each chord whose body has not
    run, each step's parent the one before it (a body's: a member, so all members join it).

    A step the events name by id counts as sent; a step without an id (a foreign sender's)
    counts as sent when its parent has a child of its name, a body when a task follows a
    member of its chord.
    """
    by_id = {t["id"]: t for t in tasks}
    known = set(by_id)
    children: dict[str, set[str]] = {}
    done = set()  # chords whose body was sent
    for task in tasks:
        parent = by_id.get(task.get("parent_id") or "")
        children.setdefault(task.get("parent_id") or "", set()).add(task.get("name") or "")
        chord = parent.get("chord") if parent else ""
        if chord and task.get("chord") != chord:
            done.add(chord)
    out: list[dict[str, Any]] = []
    for task in tasks:
        out += _unsent(task["id"], task.get("chain") or [], known, children)
        chord = task.get("chord") or ""
        if chord and chord not in done and task.get("chord_body"):
            done.add(chord)
            out += _unsent(task["id"], task["chord_body"], known, {})
    return out


def _unsent(
    parent: str, steps: Sequence[Sequence[Any]], known: set[str], children: Mapping[str, set[str]]
) -> list[dict[str, Any]]:
    if not steps:
        return []
    name, step_id = steps[0]
    if step_id in known or (step_id is None and name in children.get(parent, ())):
        return []  # it was sent: its own events tell the rest
    out = []
    for index, (name, step_id) in enumerate(steps):
        node_id = step_id or f"{parent}~{index}"
        if node_id in known:  # drawn already (two tasks naming the same step)
            break
        known.add(node_id)
        out.append(
            {"id": node_id, "name": name, "state": "UNSENT", "pending": True, "parent_id": parent}
        )
        parent = node_id
    return out
