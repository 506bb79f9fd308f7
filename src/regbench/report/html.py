"""A self-contained leaderboard page: one HTML file with its data, CSS and JavaScript inline.

Per task family a sortable table (click a header) of every model on every task of the
family, its rows in the order of the family's overall rank (a rank column; unranked models
last, the reason in a tooltip), each value with its 95% interval drawn as a bar. Best and
second values are marked as in the tables, among the models scored alike only; a value scored
differently (another signature group) carries a † whose tooltip says how, and its row is
marked; a missing value is a dash whose tooltip says why. Each row shows its run's sample count,
failed requests and parse-failure rate; a run over another set of samples than the task's
reference set is marked (‡, italic, no rank, values not marked) with why in a note column, and the
runs set aside because most of their samples failed are listed under the family with why, in no
table. Filters by task, language and modality; the family's overall ranking; and a per-sample
browser for each run (the output, the parsed boxes drawn in red over the image with the
reference in green, per-sample scores). Nothing is fetched when the page opens.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path
from typing import Any

from regbench.report.collect import Collection
from regbench.report.leaderboard import marks
from regbench.report.tables import catalog_column

MAX_SAMPLES = 40
MAX_IMAGE_SIDE = 320


def _image_data_url(path: str) -> str | None:
    """A small PNG data URL of an image (needs pillow), or None."""
    try:
        from PIL import Image
    except ImportError:
        return None
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            image.thumbnail((MAX_IMAGE_SIDE, MAX_IMAGE_SIDE))
            buffer = io.BytesIO()
            image.save(buffer, format="PNG", optimize=True)
    except (OSError, ValueError):
        return None
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _text(value: Any) -> str:
    return (value if isinstance(value, str) else "")[:2000]


def _boxes(objects: Any) -> list[list[Any]]:
    """Each object's boxes (lists of numbers; anything else left out)."""
    if not isinstance(objects, list):
        return []
    out = []
    for obj in objects:
        boxes = obj.get("boxes") if isinstance(obj, dict) else None
        if isinstance(boxes, list):
            out.append([b for b in boxes if isinstance(b, list) and all(isinstance(x, (int, float)) for x in b)])
    return out


def _samples(path: Path, images: dict[str, str | None]) -> list[dict[str, Any]]:
    """Up to MAX_SAMPLES records for the browser; unreadable lines and odd fields are passed over."""
    if not path.is_file():
        return []
    out = []
    with path.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if len(out) >= MAX_SAMPLES:
                break
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not isinstance(record, dict):
                continue
            parsed = record.get("parsed") if isinstance(record.get("parsed"), dict) else {}
            reference = record.get("reference") if isinstance(record.get("reference"), dict) else {}
            images_field = reference.get("image")
            paths = [p for p in images_field if isinstance(p, str)] if isinstance(images_field, list) else []
            if paths and paths[0] not in images:
                images[paths[0]] = _image_data_url(paths[0])  # each image once, however many runs show it
            labels = reference.get("labels")
            answer = _text(reference.get("answer")) or (
                ", ".join(str(x) for x in labels)[:2000] if isinstance(labels, list) else ""
            )
            out.append(
                {
                    "id": str(record.get("id", "")),
                    "output": _text(record.get("output")) or _text(record.get("error")),
                    "text": _text(parsed.get("text")),
                    "error": _text(parsed.get("error")) or None,
                    "pred": _boxes(parsed.get("objects")),
                    "ref": _boxes(reference.get("objects")),
                    "answer": answer,
                    "scores": record.get("scores") if isinstance(record.get("scores"), dict) else {},
                    "image": paths[0] if paths and images.get(paths[0]) else None,
                }
            )
    return out


def _finite_or_null(value: Any) -> Any:
    """The value with NaN and infinities as null (JSON.parse rejects them)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite_or_null(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_or_null(v) for v in value]
    return value


def _columns(leaderboard: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per task and metric: its header, and the marks and differences of each model's value, by the
    leaderboard's signature groups (so the page marks what the tables mark)."""
    out: dict[str, dict[str, Any]] = {}
    for name, task in leaderboard["tasks"].items():
        for key, meta in task["metrics"].items():
            group, column = catalog_column(key, meta.get("plugin") or None)
            rankings = task["rankings"].get(key, [])
            groups = [{m: task["models"][m]["values"][key] for m in ranking["ranks"]} for ranking in rankings]
            apart: dict[str, str] = {}
            for ranking in rankings[1:]:
                apart |= dict.fromkeys(ranking["ranks"], ranking["difference"])
            header = f"{group} {column.label}".strip()
            places = marks(groups, meta["higher_is_better"])
            out.setdefault(name, {})[key] = {"header": header, "marks": places, "apart": apart}
    return out


def render_html(leaderboard: dict[str, Any], collection: Collection, *, title: str = "regbench leaderboard") -> str:
    """The page, with the leaderboard and a sample of each run's records embedded."""
    images: dict[str, str | None] = {}
    samples = {
        f"{run.results.model} · {run.results.task}": _samples(run.samples_path, images) for run in collection.runs
    }
    keyed = {path: url for path, url in images.items() if url}
    payload = {"leaderboard": leaderboard, "samples": samples, "images": keyed, "columns": _columns(leaderboard)}
    # "<" only occurs inside JSON strings, where \u003c means the same: no model output can close
    # the data <script> or open an HTML comment in it (which would swallow the page's script)
    data = json.dumps(_finite_or_null(payload), ensure_ascii=False, allow_nan=False).replace("<", "\\u003c")
    return _TEMPLATE.replace("__TITLE__", html.escape(title)).replace("__DATA__", data)


_TEMPLATE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>__TITLE__</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .85rem; }
th, td { padding: .25rem .5rem; border-bottom: 1px solid #ddd; text-align: right; white-space: nowrap; }
th { cursor: pointer; background: #f4f4f4; position: sticky; top: 0; }
th.sorted-asc::after { content: " ▲"; } th.sorted-desc::after { content: " ▼"; }
td.name, th.name { text-align: left; }
.bar { display: block; height: 4px; background: #e8e8e8; position: relative; margin-top: 2px; }
.bar span { position: absolute; height: 4px; background: #4a7bd0; }
.bar i { position: absolute; width: 2px; height: 8px; top: -2px; background: #123; }
.filters { margin: .5rem 0; } .filters label { margin-right: 1rem; }
.note { color: #8a5a00; font-size: .8rem; }
.overall { font-size: .85rem; }
td.best span.value { font-weight: 700; } td.second span.value { text-decoration: underline; }
td.apart span.value { color: #8a5a00; } td.missing { color: #999; cursor: help; }
tr.scored-differently td.name:first-of-type { font-style: italic; }
tr.not-comparable td { font-style: italic; color: #666; }
td.note-cell { white-space: normal; text-align: left; max-width: 22rem; font-size: .75rem; color: #8a5a00; }
td.rank { font-weight: 600; } .dagger { color: #b36b00; cursor: help; }
.sample { display: flex; gap: 1rem; border-bottom: 1px solid #eee; padding: .5rem 0; }
.sample pre { white-space: pre-wrap; max-width: 40rem; margin: 0; font-size: .8rem; }
canvas { border: 1px solid #ccc; }
</style>
</head>
<body>
<h1>__TITLE__</h1>
<p id="meta"></p>
<div class="filters">
  <label>Task <select id="f-task"><option value="">all</option></select></label>
  <label>Language <select id="f-language"><option value="">all</option></select></label>
  <label>Modality <select id="f-modality"><option value="">all</option></select></label>
</div>
<div id="families"></div>
<h2>Samples</h2>
<label>Run <select id="run"></select></label>
<div id="samples"></div>
<h2>Notes</h2>
<ul id="notes"></ul>
<script id="data" type="application/json">__DATA__</script>
<script>
"use strict";
const DATA = JSON.parse(document.getElementById("data").textContent);
const LB = DATA.leaderboard;
const el = (tag, attrs = {}, text = "") => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== "") node.textContent = text;
  return node;
};
document.getElementById("meta").textContent =
  `${LB.generated_by}, ${Object.keys(LB.tasks).length} tasks. Overall rank: ${LB.overall_rule}.`;

function fillSelect(id, values) {
  const select = document.getElementById(id);
  [...new Set(values)].filter(v => v).sort().forEach(v => select.appendChild(el("option", {value: v}, v)));
  select.addEventListener("change", applyFilters);
}
const tasks = Object.entries(LB.tasks);
fillSelect("f-task", tasks.map(([name]) => name));
fillSelect("f-language", tasks.map(([, t]) => t.language));
fillSelect("f-modality", tasks.map(([, t]) => t.modality || ""));

function applyFilters() {
  const task = document.getElementById("f-task").value;
  const language = document.getElementById("f-language").value;
  const modality = document.getElementById("f-modality").value;
  document.querySelectorAll("tr.run").forEach(row => {
    const show = (!task || row.dataset.task === task) && (!language || row.dataset.language === language)
      && (!modality || row.dataset.modality === modality);
    row.style.display = show ? "" : "none";
  });
}

function sortBy(table, index, th) {
  const ascending = !th.classList.contains("sorted-asc");
  table.querySelectorAll("th").forEach(h => h.classList.remove("sorted-asc", "sorted-desc"));
  th.classList.add(ascending ? "sorted-asc" : "sorted-desc");
  const body = table.tBodies[0];
  const rows = [...body.rows];
  const key = row => {
    const cell = row.cells[index];
    const value = cell.dataset.value;
    return value === undefined || value === "" ? (ascending ? Infinity : -Infinity) : (isNaN(+value) ? value : +value);
  };
  rows.sort((a, b) => {
    const x = key(a), y = key(b);
    return (x < y ? -1 : x > y ? 1 : 0) * (ascending ? 1 : -1);
  });
  rows.forEach(row => body.appendChild(row));
}

const families = {};
for (const [name, task] of tasks) (families[task.family] ||= []).push([name, task]);
const container = document.getElementById("families");
for (const [family, members] of Object.entries(families).sort()) {
  container.appendChild(el("h2", {}, family));
  const overall = LB.families[family] || {overall: [], unranked: [], unranked_reasons: {}};
  const text = overall.overall.map(o => `${o.rank}. ${o.model} (mean rank ${o.mean_rank.toFixed(2)})`).join("   ");
  container.appendChild(el("p", {class: "overall"}, "Overall: " + (text || "no model ranked")));
  const reasons = overall.unranked_reasons || {};
  if (overall.unranked.length) {
    const unranked = overall.unranked.map(m => `${m} (${reasons[m] || "unranked"})`).join("; ");
    container.appendChild(el("p", {class: "overall note"}, "Unranked: " + unranked));
  }
  const aside = members.flatMap(([name, t]) =>
    Object.entries(t.excluded || {}).map(([m, e]) => `${m} · ${name}: ${e.reason}`));
  if (aside.length) {
    container.appendChild(el("p", {class: "overall note excluded"}, "Set aside, in no table: " + aside.join("; ")));
  }
  const rankOf = Object.fromEntries(overall.overall.map(o => [o.model, o.rank]));
  const keys = [...new Set(members.flatMap(([, t]) => Object.keys(t.metrics)))];
  const header = key => {
    const found = members.find(([name]) => (DATA.columns[name] || {})[key]);
    return found ? DATA.columns[found[0]][key].header : key;
  };
  const table = el("table", {"data-family": family});
  const head = table.createTHead().insertRow();
  const fixed = [
    ["#", "rank"], ["model", "model"], ["task", "task"], ["n", "n"], ["errors", "errors"], ["parse fail.", "parse"],
    ["note", "note"],
  ];
  fixed.concat(keys.map(k => [header(k), k])).forEach(([label, key], i) => {
    const metric = i >= fixed.length;
    const th = el("th", {class: i > 0 && i < 3 ? "name" : "", "data-key": key, title: metric ? key : ""}, label);
    const lower = metric && members.some(([, t]) => t.metrics[key] && !t.metrics[key].higher_is_better);
    if (lower) th.textContent += " ↓";
    th.addEventListener("click", () => sortBy(table, i, th));
    head.appendChild(th);
  });
  // rows in the order of the overall rank (unranked last), then by task
  const rows = members.flatMap(([name, task]) => Object.entries(task.models).map(([m, e]) => [name, task, m, e]));
  const order = m => rankOf[m] === undefined ? 1e9 : rankOf[m];
  const compare = (x, y) => x < y ? -1 : x > y ? 1 : 0;
  rows.sort((a, b) => order(a[2]) - order(b[2]) || compare(a[2], b[2]) || compare(a[0], b[0]));
  const body = table.createTBody();
  for (const [name, task, model, entry] of rows) {
    const row = body.insertRow();
    row.className = "run";
    Object.assign(row.dataset, {task: name, language: task.language, modality: task.modality || "", model: model});
    const comparable = entry.comparable !== false;  // older leaderboards have no such field
    const rank = comparable ? rankOf[model] : undefined;
    const unranked = comparable ? `unranked: ${reasons[model] || "not in this family's standing"}`
      : `not ranked: ${entry.note}`;
    const rankTitle = rank ? `overall rank in ${family}` : unranked;
    row.appendChild(el("td", {class: "rank", "data-value": rank ?? "", title: rankTitle}, rank ? String(rank) : "–"));
    const nameCell = el("td", {class: "name", "data-value": model}, model);
    row.appendChild(nameCell);
    row.appendChild(el("td", {class: "name", "data-value": name}, name));
    row.appendChild(el("td", {"data-value": entry.n_samples}, String(entry.n_samples)));
    const errors = entry.n_errors ?? 0;
    const errorsTitle = "model requests that failed after the retries";
    row.appendChild(el("td", {"data-value": errors, title: errorsTitle}, String(errors)));
    const failures = (100 * entry.parse_failure_rate).toFixed(1) + "%";
    row.appendChild(el("td", {"data-value": entry.parse_failure_rate}, failures));
    row.appendChild(el("td", {class: "note-cell", "data-value": entry.note || ""}, entry.note || ""));
    if (!comparable) {
      row.classList.add("not-comparable");
      const note = `not ranked: ${entry.note}`;
      nameCell.appendChild(el("span", {class: "dagger other-samples", title: note}, " ‡"));
      nameCell.title = note;
    }
    const differences = new Set();
    for (const key of keys) {
      const value = entry.values[key];
      const column = (DATA.columns[name] || {})[key] || {marks: {}, apart: {}};
      if (value === undefined) {
        const why = !task.metrics[key] ? `${name} has no metric ${key}`
          : (entry.missing && entry.missing[key]) || "not reported";
        row.appendChild(el("td", {class: "missing", "data-value": "", title: why}, "–"));
        continue;
      }
      const place = column.marks[model];
      const apart = column.apart[model];
      const classes = [place === 1 ? "best" : place === 2 ? "second" : "", apart ? "apart" : ""].filter(c => c);
      const cell = el("td", {"data-value": value, class: classes.join(" ")});
      cell.appendChild(el("span", {class: "value"}, value.toFixed(4)));
      if (apart) {
        differences.add(apart);
        const note = `scored differently: ${apart}; ranked apart, marked only among models scored alike`;
        cell.appendChild(el("span", {class: "dagger", title: note}, "†"));
        cell.title = note;
      }
      const ci = entry.ci95[key];
      const scale = Math.max(1, ...Object.values(task.models).map(m => Math.abs(m.values[key] ?? 0)));
      const bar = el("span", {class: "bar", title: ci ? `95% CI [${ci[0].toFixed(4)}, ${ci[1].toFixed(4)}]` : ""});
      if (ci) {
        const lo = Math.max(0, ci[0] / scale), hi = Math.min(1, ci[1] / scale);
        bar.appendChild(el("span", {style: `left:${100 * lo}%;width:${Math.max(1, 100 * (hi - lo))}%`}));
      }
      bar.appendChild(el("i", {style: `left:${Math.min(99, 100 * value / scale)}%`}));
      cell.appendChild(bar);
      row.appendChild(cell);
    }
    if (differences.size) {
      row.classList.add("scored-differently");
      const note = `scored differently: ${[...differences].join("; ")}`;
      nameCell.appendChild(el("span", {class: "dagger", title: note}, " †"));
      nameCell.title = note;
    }
  }
  container.appendChild(table);
}

const runSelect = document.getElementById("run");
Object.keys(DATA.samples).sort().forEach(name => runSelect.appendChild(el("option", {value: name}, name)));
runSelect.addEventListener("change", showSamples);

function drawBoxes(canvas, image, pred, ref) {
  const ctx = canvas.getContext("2d");
  canvas.width = image.width; canvas.height = image.height;
  ctx.drawImage(image, 0, 0);
  const draw = (groups, colour) => {
    ctx.strokeStyle = colour; ctx.lineWidth = 2;
    for (const boxes of groups) for (const b of boxes) {
      if (b.length !== 4) continue;
      const [w, h] = [canvas.width, canvas.height];
      ctx.strokeRect(b[0] * w, b[1] * h, (b[2] - b[0]) * w, (b[3] - b[1]) * h);
    }
  };
  draw(ref, "#2a2"); draw(pred, "#d22");
}

function showSamples() {
  const target = document.getElementById("samples");
  target.replaceChildren();
  for (const sample of DATA.samples[runSelect.value] || []) {
    const row = el("div", {class: "sample"});
    if (sample.image) {
      const canvas = el("canvas", {width: 64, height: 64});
      const image = new Image();
      image.onload = () => drawBoxes(canvas, image, sample.pred, sample.ref);
      image.src = DATA.images[sample.image];
      row.appendChild(canvas);
    }
    const scores = Object.entries(sample.scores).map(([k, v]) => `${k}=${typeof v === "number" ? v.toFixed(3) : v}`);
    const text = `${sample.id}\noutput: ${sample.output}\nreference: ${sample.answer}\n` +
      (sample.error ? `parse failure: ${sample.error}\n` : "") + `scores: ${scores.join(", ")}`;
    row.appendChild(el("pre", {}, text));
    target.appendChild(row);
  }
}
showSamples();

const notes = document.getElementById("notes");
(LB.notes.length ? LB.notes : ["none"]).forEach(note => notes.appendChild(el("li", {class: "note"}, note)));
</script>
</body>
</html>
"""
