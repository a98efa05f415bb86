"""Read a submitted notebook and match it to the instructor's, cell by cell.

Nothing a student wrote is trusted beyond their answers: tests, setup and read-only cells
always come from the instructor's copy, matched by `grade_id`. What the student changed
around them (edited metadata, duplicated, deleted or retyped cells, another assignment's
notebook) becomes a flag with a reason; what is harmless becomes a note. The result, a
`Matched`, says which sources the box runs, in which order, and how to put the outputs
back into an autograded notebook for nbgrader's formgrader and feedback.
"""
import copy
import json
from dataclasses import dataclass, field

import nbformat

from .text import plain_text

# nbgrader metadata a student has no reason to change; a change is a tamper signal.
GUARDED_FIELDS = ("grade", "solution", "locked", "points", "task", "schema_version")


class Unreadable(ValueError):
    """The file is not a notebook we can read; the message says why, in plain words."""


def read_notebook(data):
    """Parse submitted bytes into an nbformat 4 notebook, or raise `Unreadable`.

    Returns `(notebook, notes)`; a version 3 notebook is converted, with a note.
    """
    if not data.strip():
        raise Unreadable("empty file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Unreadable(f"not UTF-8 text (byte {error.start})") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        # A JSON string cannot hold a raw newline, so one left open ran into the end of file.
        ended = error.pos >= len(text.rstrip()) - 1 or error.msg.startswith("Unterminated string")
        cut = " (the file looks cut off)" if ended else ""
        raise Unreadable(f"not valid JSON at line {error.lineno}{cut}") from None
    if not isinstance(raw, dict) or "nbformat" not in raw:
        raise Unreadable("JSON, but not a notebook (no nbformat field)")
    notes = []
    version = raw.get("nbformat")
    if version == 3:
        try:
            raw = nbformat.convert(nbformat.from_dict(raw), 4)
        except Exception as error:  # any conversion failure is this file's problem only
            raise Unreadable(f"nbformat 3 notebook that cannot be converted ({error})") from None
        notes.append("converted from nbformat 3")
    elif version != 4:
        raise Unreadable(f"unsupported nbformat {version!r}")
    cells = raw.get("cells")
    if not isinstance(cells, list) or not all(isinstance(c, dict) for c in cells):
        raise Unreadable("notebook without a list of cells")
    for cell in cells:
        source = cell.get("source", "")
        source = "".join(map(str, source)) if isinstance(source, list) else str(source)
        cell["source"] = plain_text(source)  # a "\ud800" escape cannot be written back as UTF-8
        if not isinstance(cell.get("metadata"), dict):
            cell["metadata"] = {}
    return raw, notes


def nbgrader_meta(cell):
    meta = cell.get("metadata", {}).get("nbgrader")
    return meta if isinstance(meta, dict) else {}


def grade_id(cell):
    value = nbgrader_meta(cell).get("grade_id")
    return value if isinstance(value, str) else None


def is_test(meta):
    return bool(meta.get("grade")) and not meta.get("solution")


def is_answer(meta):
    return bool(meta.get("solution"))


@dataclass
class Matched:
    """A submission matched to the instructor's notebook."""

    cells: list = field(default_factory=list)     # sources the box runs, in order
    origins: list = field(default_factory=list)   # per run cell: ("answer"|"extra"|"locked", key)
    reruns: dict = field(default_factory=dict)    # answer grade_id -> its sources
    flags: list = field(default_factory=list)     # reasons for review
    notes: list = field(default_factory=list)     # harmless changes, for the record
    answers: dict = field(default_factory=dict)   # answer grade_id -> student cells
    extras: dict = field(default_factory=dict)    # anchor grade_id (or None) -> student cells

    def to_json(self):
        """Plain JSON (student cells reduced to their sources), for the reading helper's answer."""
        sources = lambda cells: [{"source": c["source"]} for c in cells]  # noqa: E731
        return {"cells": self.cells, "origins": [list(o) for o in self.origins],
                "reruns": self.reruns, "flags": self.flags, "notes": self.notes,
                "answers": {gid: sources(cells) for gid, cells in self.answers.items()},
                "extras": [[anchor, sources(cells)] for anchor, cells in self.extras.items()]}

    @classmethod
    def from_json(cls, data):
        return cls(data["cells"], [tuple(o) for o in data["origins"]], data["reruns"],
                   data["flags"], data["notes"], data["answers"],
                   {anchor: cells for anchor, cells in data["extras"]})


def match(student_nb, release_nb, other_assignments=None):
    """Match `student_nb` to `release_nb` (the notebook the student was given).

    `other_assignments` maps assignment name -> its answer grade_ids, to recognise a
    notebook handed in for the wrong assignment.
    """
    result = Matched()
    given = {grade_id(c): c for c in release_nb["cells"] if grade_id(c)}
    answer_ids = [gid for gid, c in given.items() if is_answer(nbgrader_meta(c))]
    seen, anchor = {}, None
    for cell in student_nb["cells"]:
        gid = grade_id(cell)
        if gid in given:
            seen.setdefault(gid, []).append(cell)
            check_metadata(cell, given[gid], result)
            anchor = gid
            if is_answer(nbgrader_meta(given[gid])) and cell.get("cell_type") == "code":
                result.answers.setdefault(gid, []).append(cell)
        elif cell.get("cell_type") == "code" and cell["source"].strip():
            if gid:
                result.notes.append(f"cell {gid!r} is not part of this assignment; run as your own cell")
            result.extras.setdefault(anchor, []).append(cell)
    found = [gid for gid in answer_ids if gid in seen]
    if not found:
        owner = next((name for name, ids in (other_assignments or {}).items()
                      if set(ids) & {grade_id(c) for c in student_nb["cells"]}), None)
        result.flags.append(f"wrong notebook: this is the notebook of {owner}" if owner else
                            "structure changed: none of this assignment's answer cells is here")
    for gid, cells in seen.items():
        if len(cells) > 1:
            kind = "answer" if gid in answer_ids else "read-only"
            result.flags.append(f"structure changed: {kind} cell {gid!r} appears {len(cells)} times"
                                + ("; all copies run, in order" if kind == "answer" else ""))
    if found:
        for gid, cell in given.items():
            meta = nbgrader_meta(cell)
            if gid not in seen and (is_test(meta) or is_answer(meta)):
                what = "test" if is_test(meta) else "answer"
                result.flags.append(f"structure changed: {what} cell {gid!r} was deleted"
                                    + ("; the instructor's copy was used" if what == "test" else ""))
    plan_run(release_nb, result)
    return result


def check_metadata(cell, given, result):
    """Compare a student's cell with the given one: a flag for edited metadata, a note for
    an edited read-only cell (the instructor's copy runs anyway)."""
    mine, theirs = nbgrader_meta(cell), nbgrader_meta(given)
    changed = [name for name in GUARDED_FIELDS if mine.get(name) != theirs.get(name)]
    if cell.get("cell_type") != given.get("cell_type"):
        changed.append("cell_type")
    gid = theirs["grade_id"]
    if changed:
        result.flags.append(f"tamper attempt: edited metadata of cell {gid!r} ({', '.join(changed)})")
    elif theirs.get("locked") and not is_answer(theirs) and cell["source"] != given["source"]:
        result.notes.append(f"read-only cell {gid!r} was edited; the instructor's copy was used")


def plan_run(release_nb, result):
    """The box's cell list: the instructor's code cells in order, minus tests, with the
    student's answers in place and their own extra cells where they put them."""
    def add(source, origin):
        result.cells.append(source)
        result.origins.append(origin)

    for cell in result.extras.get(None, []):
        add(cell["source"], ("extra", None))
    for cell in release_nb["cells"]:
        gid, meta = grade_id(cell), nbgrader_meta(cell)
        if cell.get("cell_type") == "code" and gid and is_answer(meta):
            mine = result.answers.get(gid, [cell])  # missing: the given stub stands in
            result.reruns[gid] = [c["source"] for c in mine]
            for source in result.reruns[gid]:
                add(source, ("answer", gid))
        elif cell.get("cell_type") == "code" and not is_test(meta):
            add(cell["source"], ("locked", gid))
        # The student's own cells run where they put them, after any kind of cell.
        for extra in result.extras.get(gid, []) if gid else []:
            add(extra["source"], ("extra", gid))


def autograded_notebook(source_nb, matched, cell_outputs, verdicts):
    """The notebook nbgrader's formgrader and feedback read: the instructor's source
    notebook, with the student's answers and extra cells in place, the outputs of the run,
    and each test cell's outcome as its output (an error for a failed check).

    `cell_outputs` are the box's lines per run cell (aligned with `matched.origins`).
    """
    outputs = {}
    for origin, line in zip(matched.origins, cell_outputs):
        outputs.setdefault(origin, []).append(line)
    notebook = copy.deepcopy(source_nb)
    cells = []

    def with_output(cell, line):
        cell = nbformat.from_dict(copy.deepcopy(cell))
        cell["outputs"] = as_outputs(line) if line else []
        cell["execution_count"] = None
        return cell

    own = iter(range(1, 1_000_000))  # the student's own cells are numbered: same run, same file

    for extra, line in zip(matched.extras.get(None, []), outputs.get(("extra", None), [])):
        cells.append(with_output(student_cell(extra, next(own)), line))
    for cell in source_nb["cells"]:
        gid, meta = grade_id(cell), nbgrader_meta(cell)
        if cell["cell_type"] != "code":
            cells.append(cell)
        elif gid and is_answer(meta):
            # What ran: the student's copies, or the release stub if they deleted the cell.
            # Never the source cell's own text: that is the instructor's solution.
            lines = outputs.get(("answer", gid), [])
            ran = matched.reruns.get(gid, [])
            for number, mine in enumerate(ran):
                line = lines[number] if number < len(lines) else None
                answer = copy.deepcopy(cell)
                answer["source"] = mine
                if number and "id" in answer:  # a duplicated answer: ids stay unique
                    answer["id"] = f"{answer['id']}-{number + 1}"
                cells.append(with_output(answer, line))
        elif is_test(meta):
            cells.append(test_cell(cell, verdicts.get(gid)))
        else:
            lines = outputs.get(("locked", gid), [None])
            cells.append(with_output(cell, lines[0]))
        for extra, line in zip(matched.extras.get(gid, []) if gid else [],
                               outputs.get(("extra", gid), [])):
            cells.append(with_output(student_cell(extra, next(own)), line))
    notebook["cells"] = cells
    return nbformat.from_dict(notebook)


def student_cell(cell, number):
    """A student's own cell, reduced to what a code cell needs, with an id of ours (theirs
    could repeat an instructor cell's id)."""
    return nbformat.v4.new_code_cell(cell["source"], id=f"student-cell-{number}")


def as_outputs(line):
    """nbformat outputs for one run cell: its captured text, and its error if it failed.

    The line is the student's process's word: any field may hold any JSON, so each is made
    plain text here, or one student's line could stop the whole batch from being written.
    """
    outputs = []
    if line.get("output"):
        text = plain_text(line["output"])
        outputs.append(nbformat.v4.new_output("stream", name="stdout", text=text))
    if line.get("status") == "error":
        name, _, message = plain_text(line.get("error", "Error: ")).partition(": ")
        outputs.append(nbformat.v4.new_output("error", ename=name, evalue=message, traceback=[]))
    return outputs


def test_cell(cell, verdict):
    """A test cell with its verdict as output, as nbgrader's autograde would leave it."""
    cell = nbformat.from_dict(copy.deepcopy(cell))
    cell["execution_count"] = None
    if verdict is None or verdict.passed:
        cell["outputs"] = [nbformat.v4.new_output("stream", name="stdout", text="checks passed.\n")]
    else:
        message = plain_text(verdict.message)  # it may quote what the student's code raised
        cell["outputs"] = [nbformat.v4.new_output(
            "error", ename="CheckFailed", evalue=message, traceback=[f"CheckFailed: {message}"])]
    return cell
