"""Feedback from the gradebook: a page per student, a Moodle comment, Moodle's feedback-file
zip, and a cohort summary with histograms.

Everything is rebuilt from ``grade.json`` records (``gradebook.Row``), so it can be redone
at any time. Pages are self-contained HTML (inline CSS, images as data URIs, no scripts);
every piece of text is autoescaped, because reasons, tracebacks, file and student names
come from student work. Bonus questions are shown under a "Bonus" label, with the sentence
saying how their points count (``bonus_rule``).
"""

from __future__ import annotations

import base64
import io
import statistics
import zipfile
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from jinja2 import DictLoader, Environment
from markupsafe import escape

from ..atomic import atomic_write
from ..course.rubric import Rubric
from ..grading.record import ItemGrade, Status
from .gradebook import Row

FEEDBACK_FILE = "feedback.html"
_TRACEBACK_LINES = 40

_BASE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 62rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: .5rem 0 1.5rem; width: 100%; }
th, td { border: 1px solid #ccc; padding: .3rem .5rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } table.totals { width: auto; }
pre { background: #f7f7f7; padding: .5rem; overflow-x: auto; font-size: .85em; white-space: pre-wrap; }
.problem { border: 2px solid #b00; background: #fee; padding: .7rem; margin: 1rem 0; }
.passed td.status { color: #070; } .partial td.status { color: #a60; }
.failed td.status { color: #b00; } .error td.status { color: #808; }
.manual td.status, .planned td.status, .marked td.status { color: #066; } .muted { color: #666; }
.metric { margin-top: .3rem; font-style: italic; } img { margin: .5rem 1rem .5rem 0; }
</style></head>
<body>{% block body %}{% endblock %}</body></html>
"""

_STUDENT = """{% extends "base.html" %}{% block body %}
<h1>{{ assignment }}: {{ who }}</h1>
<p class="muted">{{ rubric_title }} · submission {{ submission }}\
{% if graded_at %} · graded {{ graded_at }}{% endif %}</p>
{% if problem %}
<div class="problem"><strong>This submission could not be graded:</strong> {{ problem }}</div>
{% endif %}
<table class="totals">
<tr><th>Points</th><td>{{ row.raw|num }} / {{ row.maximum|num }}</td></tr>
{% if late %}<tr><th>Late</th><td>{{ late }}</td></tr>{% endif %}
<tr><th>Final grade</th><td><strong>{{ row.final|num }} / {{ row.maximum|num }}</strong></td></tr>
{% if row.awaiting_marker %}
<tr><th>Awaiting a marker</th><td>{{ row.awaiting_marker|points }}, not yet in the grade</td></tr>
{% endif %}
{% if bonus %}
<tr><th>Bonus</th><td>{{ row.bonus|num }} / {{ bonus.maximum|num }}\
{% if bonus.awaiting %} ({{ bonus.awaiting|points }} awaiting a marker){% endif %}. {{ bonus.rule }}</td></tr>
{% endif %}
</table>
{% for q in questions %}
<h2>{% if q.bonus %}Bonus: question{% else %}Question{% endif %} {{ q.id }}{% if q.title %}: {{ q.title }}{% endif %}
 <span class="muted">({{ q.earned|num }} / {{ q.points|num }})</span></h2>
{% if q.bonus %}<p class="muted">{{ bonus.rule }}</p>{% endif %}
<table><thead><tr><th>Item</th><th>What</th><th>Points</th><th>Status</th><th>Reason</th></tr></thead><tbody>
{% for it in q.rows %}
<tr class="{{ it.status }}"><td>{{ it.id }}</td><td>{{ it.title }}</td>
<td>{% if it.points is none %}{% if it.status.value == "error" %}the grader failed on it: awaiting a marker\
{% elif it.status.awaiting %}awaiting a marker{% else %}–{% endif %} (of {{ it.max_points|num }})\
{% else %}{{ it.points|num }} / {{ it.max_points|num }}{% endif %}</td>
<td class="status">{{ it.status }}</td><td>{{ it.reason }}
{% if metrics[it.id] %}<div class="metric">{{ metrics[it.id] }}</div>{% endif %}
{% if it.detail %}<pre>{{ it.detail[-tail:]|join("\\n") }}</pre>{% endif %}</td></tr>
{% endfor %}
</tbody></table>
{% endfor %}
{% for nb in notebooks %}
<h2>Notebook {{ nb.notebook }}</h2>
<p class="muted">{{ nb.code_cells }} code cells, ran in {{ nb.seconds|num }} s</p>
{% if nb.problem %}<div class="problem">{{ nb.problem }}</div>{% endif %}
{% if nb.causes %}<p>At the root of what failed:</p><ul class="causes">{% for cause in nb.causes %}<li>{{ cause }}</li>\
{% endfor %}</ul>{% endif %}
{% for cell in nb.own_faults %}
<h3>Code cell {{ cell.cell }} (In [{{ cell.cell }}]): {{ cell.status }}</h3>
{% if cell.error or cell.note %}<p>{{ cell.error or cell.note }}</p>{% endif %}
{% if cell.traceback_tail %}<pre>{{ cell.traceback_tail[-tail:]|join("\\n") }}</pre>{% endif %}
{% endfor %}
{% set skipped = nb.cells_not_ok|selectattr("status", "equalto", "skipped")|list|length %}
{% if skipped %}<p class="muted">{{ skipped }} later cells were not run.</p>{% endif %}
{% if nb.truncated_output_cells %}<p class="muted">Outputs cut for being too long in cells \
{{ nb.truncated_output_cells|join(", ") }}.</p>{% endif %}
{% endfor %}
{% if findings %}
<h2>Checks on the files</h2>
<table><thead><tr><th>Level</th><th>File</th><th>Message</th></tr></thead><tbody>
{% for f in findings %}<tr><td>{{ f.level }}</td><td>{{ f.file }}</td><td>{{ f.message }}</td></tr>
{% endfor %}</tbody></table>
{% endif %}
{% endblock %}
"""

_COHORT = """{% extends "base.html" %}{% block body %}
<h1>{{ assignment }}: cohort summary</h1>
<p class="muted">{{ rubric_title }}</p>
{% if errors %}<div class="problem"><strong>{{ errors|length }} could not be graded</strong> because the grader \
failed (not the students): look at each <code>error.txt</code>, then run the same command again to grade them.
<ul>{% for id, why in errors.items() %}<li>{{ id }}: {{ why|truncate(200, true, "…", 0) }}</li>{% endfor %}</ul></div>
{% endif %}
{% if not count %}<p>No submissions graded.</p>{% else %}
<p>{{ count }} submissions graded. {{ ungraded }} could not be read (the submitted files); \
{{ late }} late, {{ not_assessed }} not assessed.</p>
<table class="totals"><thead><tr><th></th><th>Mean</th><th>Median</th><th>Min</th><th>Max</th></tr></thead><tbody>
{% for name, v in stats.items() %}<tr><th>{{ name }} (of {{ maximum|num }})</th><td>{{ v|mean|num }}</td>\
<td>{{ v|median|num }}</td><td>{{ v|min|num }}</td><td>{{ v|max|num }}</td></tr>
{% endfor %}</tbody></table>
<h2>Scores</h2>
{% for img in images %}<img src="data:image/png;base64,{{ img.data }}" alt="{{ img.alt }}">{% endfor %}
<h2>Items most often not earned</h2>
{% if missed %}<table><thead><tr><th>Item</th><th>What</th><th>Not earned in full</th><th>Grader errors</th>\
<th>Most common reason</th></tr></thead><tbody>
{% for m in missed %}<tr><td>{{ m.id }}</td><td>{{ m.title }}</td><td>{{ m.count }}</td><td>{{ m.errors }}</td>\
<td>{{ m.reasons.most_common(1)[0][0]|truncate(120, true, "…", 0) if m.reasons }}</td></tr>
{% endfor %}</tbody></table>{% else %}<p>Every automatic item was earned in full.</p>{% endif %}
<h2>What a marker must look at, per submission</h2>
<p class="muted">How much of each submission the grader could grade automatically, the items it sent to a marker \
(it could not tell which part of the notebook they are about, or could not run the notebook as its student did), \
and what went wrong at the root of its run.</p>
<table><thead><tr><th>Submission</th><th>Graded automatically</th><th>Sent to a marker</th>\
<th>Marked by hand</th><th>At the root of what failed</th></tr></thead><tbody>
{% for s in to_look_at %}<tr><td>{{ s.who }}</td><td>{{ s.graded|num }} of {{ s.automatic|num }} points\
{% if s.automatic %} ({{ (100 * s.graded / s.automatic)|round|int }}%){% endif %}</td>\
<td>{% if s.referred %}{{ s.referred|join(", ") }} ({{ s.referred_points|points }}){% else %}–{% endif %}</td>\
<td>{{ s.manual|num }}</td><td>{{ s.causes|join("; ")|truncate(300, true, "…", 0) if s.causes else "–" }}</td></tr>
{% endfor %}</tbody></table>
<h2>Awaiting a marker</h2>
{% if awaiting %}
<ul>{% for (id, title), n in awaiting %}<li>{{ id }} {{ title }}: {{ n }} submissions</li>{% endfor %}</ul>
{% else %}<p>Nothing.</p>{% endif %}
{% endif %}{% endblock %}
"""

_ENV = Environment(
    loader=DictLoader({"base.html": _BASE, "student.html": _STUDENT, "cohort.html": _COHORT}),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _num(value: float | None) -> str:
    """A number as people write it: 2, 0.5, 7.25 (never 2.0000001)."""
    return "–" if value is None else f"{round(float(value), 6):g}"


def _points(value: float) -> str:
    return f"{_num(value)} point{'' if value == 1 else 's'}"


_ENV.filters.update(num=_num, points=_points, mean=statistics.fmean, median=statistics.median)


def _who(row: Row) -> str:
    return row.student.name if row.student and row.student.name else row.submission


def _late_line(row: Row) -> str:
    late = row.late
    parts = [late.note or (f"{late.days} day{'' if late.days == 1 else 's'} late" if late.days else "")]
    if late.penalty:
        parts.append(f"{_points(late.penalty)} deducted")
    if late.not_assessed:
        parts.append("not assessed: the grade is 0")
    return "; ".join(p for p in parts if p)


def bonus_rule(row: Row) -> str:
    """How bonus points count, in the words a student reads."""
    if row.grade.bonus_cap == "total":
        return (f"Bonus points are added to your points, but the grade with them never exceeds the maximum "
                f"({_num(row.maximum)}); any late penalty applies after that cap.")
    return f"Bonus points are added to your points and may take the grade above the maximum ({_num(row.maximum)})."


def _bonus(row: Row) -> dict[str, Any] | None:
    grade = row.grade
    if not grade.bonus:
        return None
    return {"maximum": grade.bonus_max, "awaiting": grade.bonus_awaiting, "rule": bonus_rule(row)}


def _metric_line(item: ItemGrade, rubric: Rubric) -> str:
    """'accuracy 0.55 — needs ≥ 0.9 for full marks, ≥ 0.6 for 50%' for a metric item."""
    try:
        metric = rubric.item(item.id)[1].metric
    except KeyError:
        return ""
    if metric is None:
        return ""
    measured = item.measured(metric.name)
    if measured is None:
        return ""
    value, reference = measured["value"], measured.get("reference")
    unit = f" {metric.unit}" if metric.unit else ""
    return f"{metric.name} {_num(value)}{unit} — {metric.needs(reference)}"


def _questions(row: Row, rubric: Rubric) -> list[dict[str, Any]]:
    """The grade's items grouped by question, in the rubric's order (unknown questions last)."""
    groups: dict[str, list[ItemGrade]] = {}
    for item in row.grade.items:
        groups.setdefault(item.question, []).append(item)
    known = {q.id: q for q in rubric.questions}
    order = [q for q in known if q in groups] + [q for q in groups if q not in known]
    return [
        {
            "id": qid,
            "title": known[qid].title if qid in known else "",
            "points": known[qid].points if qid in known else sum(i.max_points for i in groups[qid]),
            "bonus": all(i.bonus for i in groups[qid]),
            "earned": row.grade.question_points(qid),
            "rows": groups[qid],
        }
        for qid in order
    ]


def student_page(row: Row, rubric: Rubric) -> str:
    """One student's feedback as a complete, self-contained HTML page."""
    grade = row.grade
    return _ENV.get_template("student.html").render(
        title=f"{rubric.assignment}: {_who(row)}",
        assignment=grade.assignment or rubric.assignment,
        rubric_title=rubric.title,
        who=_who(row),
        submission=row.submission,
        graded_at=grade.graded_at,
        problem=grade.problem,
        row=row,
        bonus=_bonus(row),
        late=_late_line(row),
        questions=_questions(row, rubric),
        metrics={item.id: _metric_line(item, rubric) for item in grade.items},
        notebooks=grade.notebooks,
        findings=grade.findings,
        tail=_TRACEBACK_LINES,
    )


def _short(text: str, limit: int) -> str:
    """``text`` escaped for HTML and cut so that the escaped form is at most ``limit`` characters."""
    out: list[str] = []
    used = 0
    for char in " ".join(str(text).split()):
        piece = str(escape(char))
        if used + len(piece) > limit - 1:
            return "".join(out) + "…"
        out.append(piece)
        used += len(piece)
    return "".join(out)


def moodle_comment(row: Row, *, limit: int = 1500) -> str:
    """A short HTML fragment for Moodle's "Feedback comments" column, at most ``limit`` characters."""
    sentences = [f"Grade: {_num(row.final)} / {_num(row.maximum)}"]
    if row.late.penalty or row.late.not_assessed:
        sentences[0] += f" (raw {_num(row.raw)}, late penalty {_num(row.late.penalty)})"
    sentences[0] += "."
    if row.late.note:
        sentences.append(_short(row.late.note.rstrip("."), 200) + ".")
    if row.awaiting_marker:
        sentences.append(f"{_points(row.awaiting_marker)} awaiting a marker.")
    if row.grade.bonus:
        awaiting = f", {_num(row.grade.bonus_awaiting)} awaiting a marker" if row.grade.bonus_awaiting else ""
        sentences.append(f"Bonus: {_num(row.bonus)} / {_num(row.grade.bonus_max)}{awaiting}. {bonus_rule(row)}")
    if row.grade.problem:
        sentences.append("Could not be graded: " + _short(row.grade.problem, 200))
    text = f"<p>{' '.join(sentences)}</p>"
    missed = [item for item in row.grade.items if item.missed]
    if not missed:
        return text
    lines: list[str] = []
    tail = "<br>… and {} more: see the feedback file.</p>"
    budget = limit - len(text) - len("<p>Not fully earned:") - len(tail.format(len(missed)))
    for n, item in enumerate(missed):
        label = f"{'bonus ' if item.bonus else ''}{_short(item.id, 40)}"
        line = f"<br>{label} ({_num(item.points)}/{_num(item.max_points)}): "
        line += _short(item.reason, 200)
        if len(line) > budget:
            return f"{text}<p>Not fully earned:{''.join(lines)}{tail.format(len(missed) - n)}"
        lines.append(line)
        budget -= len(line)
    return f"{text}<p>Not fully earned:{''.join(lines)}</p>"


def _safe_name(submission: str) -> str:
    if submission in ("", ".", "..") or Path(submission).name != submission or "\\" in submission:
        raise ValueError(f"submission id {submission!r} cannot be a file name")
    return submission


def write_pages(rows: Iterable[Row], rubric: Rubric, folder: Path) -> list[Path]:
    """Write ``folder/<submission>.html`` for each row; returns the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    return [
        atomic_write(folder / f"{_safe_name(row.submission)}.html", student_page(row, rubric).encode())
        for row in rows
    ]


def _moodle_entry(name: str, participant: str) -> str:
    clean = " ".join(name.replace("_", " ").replace("/", " ").replace("\\", " ").split())
    return f"{clean}_{participant}_assignfeedback_file/{FEEDBACK_FILE}"


def feedback_zip(rows: Iterable[Row], rubric: Rubric, path: Path) -> Path:
    """A zip for Moodle's "Upload multiple feedback files in a zip": one page per participant.

    Rows without a student, and participant ids that are not Moodle's numbers, are skipped:
    Moodle could not match them. A team's page goes to each of its members.
    """
    buffer = io.BytesIO()
    written: set[str] = set()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for row in rows:
            student = row.student
            if student is None:
                continue
            participants = student.members if student.team else (student.participant,)  # an unmatched team: none
            page = student_page(row, rubric)
            for participant in participants:
                entry = _moodle_entry(student.name, str(participant))
                if str(participant).isdigit() and entry not in written:
                    archive.writestr(entry, page)
                    written.add(entry)
    return atomic_write(path, buffer.getvalue())


def _question_points(row: Row, question_id: str) -> float:
    return row.grade.question_points(question_id)


def _histogram(values: Sequence[float], maximum: float, title: str) -> dict[str, str]:
    """A PNG histogram as base64, drawn on a pyplot-free Agg figure (no global state to close)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(4.2, 2.6), dpi=80)
    axes = figure.add_subplot()
    axes.hist(values, bins=10, range=(0, maximum), color="#4a78b0", edgecolor="white")
    axes.set_title(title, fontsize=10)
    axes.set_xlabel("points")
    axes.set_ylabel("submissions")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return {"data": base64.b64encode(buffer.getvalue()).decode("ascii"), "alt": f"histogram: {title}"}


def _missed_items(rows: Sequence[Row], rubric: Rubric) -> list[dict[str, Any]]:
    """Automatic items not earned in full, most often missed first (then in the rubric's order)."""
    order = {item.id: n for n, (_, item) in enumerate(rubric.items())}
    tally: dict[str, dict[str, Any]] = {}
    for row in rows:
        for item in row.grade.automatic:
            if item.earned >= item.max_points - 1e-9:
                continue
            blank = {"id": item.id, "title": item.title, "count": 0, "errors": 0}
            entry = tally.setdefault(item.id, {**blank, "reasons": Counter()})
            entry["count"] += 1
            entry["errors"] += item.status is Status.ERROR
            entry["reasons"].update([item.reason] if item.reason else [])
    missed = list(tally.values())
    return sorted(missed, key=lambda e: (-e["count"], order.get(e["id"], len(order)), e["id"]))


def _to_look_at(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """Per submission: the automatic points graded automatically, the items sent to a marker
    (or failed on by the grader), the points marked by hand, and the root causes of its
    run; the submissions with the most left to a person first."""
    found = []
    for row in rows:
        grade = row.grade
        automatic = [item for item in grade.automatic if not item.bonus]
        referred = [item for item in automatic if item.status in (Status.REFERRED, Status.ERROR)]
        found.append({
            "who": _who(row),
            "graded": grade.auto_max,
            "automatic": sum(item.max_points for item in automatic),
            "referred": [item.id for item in referred],
            "referred_points": sum(item.max_points for item in referred),
            "manual": sum(item.max_points for item in grade.awaiting if item not in referred and not item.bonus),
            "causes": [f"{notebook.notebook}: {cause}" for notebook in grade.notebooks for cause in notebook.causes],
        })
    return sorted(found, key=lambda entry: (-entry["referred_points"], entry["who"]))


def cohort_page(rows: Iterable[Row], rubric: Rubric, path: Path, *, errors: dict[str, str] | None = None) -> Path:
    """Write a self-contained HTML summary of the cohort's grades to ``path``; ``errors``:
    the submissions the grader failed on, with why."""
    rows = list(rows)
    context: dict[str, Any] = {"title": f"{rubric.assignment}: cohort", "assignment": rubric.assignment,
                               "errors": errors or {}}
    context.update(rubric_title=rubric.title, count=len(rows), maximum=rubric.total_points)
    if rows:
        finals = [r.final for r in rows]
        images = [
            _histogram([_question_points(r, q.id) for r in rows], q.points,
                       f"{'Bonus question' if q.bonus else 'Question'} {q.id}: {q.title}")
            for q in rubric.questions
        ]
        images.append(_histogram(finals, max(rubric.total_points, *finals), "Final grade"))  # bonus_cap none: above
        awaiting = Counter((item.id, item.title) for row in rows for item in row.grade.awaiting)
        context.update(
            stats={"Final grade": finals, "Raw points": [r.raw for r in rows]},
            images=images,
            missed=_missed_items(rows, rubric),
            awaiting=awaiting.most_common(),
            ungraded=sum(1 for r in rows if r.grade.problem),
            to_look_at=_to_look_at(rows),
            late=sum(1 for r in rows if r.late.days > 0),
            not_assessed=sum(1 for r in rows if r.late.not_assessed),
        )
    return atomic_write(path, _ENV.get_template("cohort.html").render(**context).encode())
