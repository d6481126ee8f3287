"""The panel's pages: Jinja2 templates (autoescaped) and a little vanilla JS, no build step.

They live here as strings so that they ship with the package wherever it is installed.
"""

from __future__ import annotations

from typing import Any

from jinja2 import DictLoader, Environment, select_autoescape

_BASE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>geomas panel · {{ title }}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;margin:0;color:#222}
nav{background:#2d3e50;padding:.5em 1em}nav a,nav span{color:#fff;margin-right:1em}
main{padding:1em 2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;
padding:.25em .5em;text-align:left;vertical-align:top}.err{color:#b00}
.status-running,.step-running{color:#06c}.status-succeeded,.step-completed{color:#080}
.status-failed,.step-failed{color:#b00}
pre{background:#f4f4f4;padding:.5em;max-height:30em;overflow:auto;white-space:pre-wrap}
textarea{width:100%;font-family:monospace}form.inline{display:inline}
</style></head><body>
{% if user %}<nav><a href="/">Overview</a><a href="/runs">Runs</a>
<a href="/models">Models</a><a href="/corpus">Corpus</a><a href="/docs">API</a>
<span>{{ user.name }} ({{ user.role }})</span>
<form class="inline" method="post" action="/logout">
<input type="hidden" name="csrf_token" value="{{ csrf }}"><button>Log out</button></form>
</nav>{% endif %}
<main>{% block body %}{% endblock %}</main>
<script>
const CSRF = {{ csrf|tojson }};
async function api(method, url, body) {
  const opts = {method, headers: {"X-CSRF-Token": CSRF}};
  if (body instanceof FormData) { opts.body = body; }
  else if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body);
  }
  const r = await fetch(url, opts);
  const data = await r.json().catch(() => ({}));
  const out = document.getElementById("result");
  if (out) out.textContent = r.ok ? "done: " + JSON.stringify(data) :
    "error " + r.status + ": " + (data.message || JSON.stringify(data.detail || data));
  return r.ok;
}
</script>
{% block script %}{% endblock %}
</body></html>"""

_LOGIN = """{% extends "base.html" %}{% block body %}<h1>geomas panel</h1>
{% if error %}<p class="err">{{ error }}</p>{% endif %}
<form method="post" action="/login">
<input type="hidden" name="csrf_token" value="{{ login_csrf }}">
<p><label>User <input name="username" autocomplete="username" required></label></p>
<p><label>Password <input type="password" name="password" autocomplete="current-password"
required></label></p><button>Log in</button></form>{% endblock %}"""

_OVERVIEW = """{% extends "base.html" %}{% block body %}<h1>Overview</h1>
<h2>Corpus vs retrain thresholds</h2>
{% set d = o.retrain.decision %}
{% if d %}<table>
<tr><th>decision</th><td>{{ d.outcome }} — {{ d.reason }}</td></tr>
<tr><th>documents</th><td>{{ d.corpus_docs }} ({{ d.new_docs }} new vs champion
{{ d.champion_version or "none" }})</td></tr>
<tr><th>QA pairs</th><td>{{ d.qa_pairs if d.qa_pairs is not none else "unknown" }}</td></tr>
</table>{% else %}<p>{{ o.retrain.note }}</p>{% endif %}
<h2>Retrain schedule</h2>{% set p = o.retrain.pause %}
<p id="retrain-state">{% if p and p.paused %}<b class="err">Paused</b> by {{ p.by }} at
{{ p.at or "?" }}: {{ p.reason }}{% else %}<b>Active</b>{% if p %} (resumed by {{ p.by }} at
{{ p.at }}){% endif %}{% endif %}</p>
{% if can_run %}<p>{% if p and p.paused %}<button onclick="resumeRetrain()">Resume</button>
{% else %}<label>Reason <input id="pause-reason" size="40" required></label>
<button onclick="pauseRetrain()">Pause</button>{% endif %} <span id="result"></span></p>
{% endif %}<table>{% for k, v in o.retrain.schedule.items() if k != "paused" %}
<tr><th>{{ k }}</th><td>{{ v }}</td></tr>{% endfor %}
<tr><th>ZenML schedule</th><td>{% for s in o.zenml_schedule.schedules %}{{ s.name }}
({{ s.cron }}, {{ "active" if s.active else "inactive" }}, since {{ s.created }})<br>
{% endfor %}{{ o.zenml_schedule.note }}</td></tr>
<tr><th>scheduled</th><td>{{ o.schedule_note }}</td></tr></table>
<h2>Models</h2>{% if o.model %}<p>{{ o.model.name }}: champion
v{{ o.model.champion or "-" }}, challenger v{{ o.model.challenger or "-" }}
(<a href="/models/{{ o.model.name }}">versions</a>)</p>
{% for v in o.model.versions if v.version in [o.model.champion, o.model.challenger] %}
<p>v{{ v.version }} {{ v.aliases|join(", ") }}: {% for k, m in v.metrics.items() %}
{{ k }}={{ m }} {% endfor %}</p>{% endfor %}{% else %}<p>{{ o.model_note }}</p>{% endif %}
<h2>Last runs</h2>{% include "runs_table.html" %}{% endblock %}
{% block script %}{% if can_run %}<script>
async function pauseRetrain() { const reason = document.getElementById("pause-reason").value;
  if (!reason.trim()) { document.getElementById("result").textContent = "give a reason";
    return; }
  if (await api("POST", "/api/retrain/pause", {reason})) location.reload(); }
async function resumeRetrain() {
  if (await api("POST", "/api/retrain/resume")) location.reload(); }
</script>{% endif %}{% endblock %}"""

_RUNS_TABLE = """<table><tr><th>id</th><th>pipeline</th><th>status</th><th>who</th>
<th>created</th><th>seconds</th><th>config</th></tr>
{% for r in runs %}<tr><td><a href="/runs/{{ r.id }}">{{ r.id }}</a></td>
<td>{{ r.pipeline }}</td><td class="status-{{ r.status }}">{{ r.status }}</td>
<td>{{ r.user }}</td><td>{{ r.created_at }}</td><td>{{ r.duration_s or "" }}</td>
<td>{{ r.config_name }} ({{ r.config_sha256[:12] }})</td></tr>{% endfor %}</table>"""

_RUNS = """{% extends "base.html" %}{% block body %}<h1>Runs</h1>
{% if can_run %}<h2>Launch</h2>
<style>.help{color:#555;font-size:.85em}details.sec{margin:.3em 0}
fieldset{border:1px solid #ddd}table.fields th{font-weight:normal;white-space:nowrap}</style>
<form method="get" action="/runs" id="preset-form"><label>Start from
<select name="preset">{% for p in presets %}<option value="{{ p.value }}"
{%- if p.value == preset %} selected{% endif %}>{{ p.label }}</option>{% endfor %}</select>
</label><input type="hidden" name="pipeline" value="{{ pipeline }}"> <button>Load</button>
<small>a config file, or the config of an earlier run</small></form>
{% if preset_error %}<p class="err" id="preset-error">{{ preset_error }}</p>{% endif %}
{% macro fields(items) %}<table class="fields">{% for f in items %}
{% set v = values.get(f.name, "") %}<tr><th><label for="{{ f.name }}">{{ f.label }}</label>
{%- if f.required %} <abbr title="required">*</abbr>{% endif %}</th><td>
{%- if f.choices %}<select id="{{ f.name }}" name="{{ f.name }}">
{%- if f.nullable or v == "" %}<option value=""{% if v == "" %} selected{% endif %}>
{{- "(none)" if f.nullable else "(not set)" }}</option>{% endif %}
{%- if v != "" and v not in f.choices %}<option selected>{{ v }}</option>{% endif %}
{%- for c in f.choices %}<option{% if v == c %} selected{% endif %}>{{ c }}</option>
{%- endfor %}</select>
{%- elif f.kind == "yaml" %}<textarea id="{{ f.name }}" name="{{ f.name }}"
rows="{{ [[v.splitlines()|length, 1]|max, 8]|min }}">{{ v }}</textarea>
{%- else %}<input id="{{ f.name }}" name="{{ f.name }}" value="{{ v }}" size="40"
{%- if f.kind in ("int", "float") %} inputmode="decimal"{% endif %}>{% endif %}
{%- if f.path in field_errors %} <span class="err" data-field="{{ f.path }}">
{{- field_errors[f.path] }}</span>{% endif %}</td>
<td class="help">{% if f.kind == "yaml" %}(YAML) {% endif %}{{ f.help }}</td></tr>
{% endfor %}</table>{% endmacro %}
{% macro section(s) %}<details class="sec" id="section-{{ s.path }}"
{%- if s.path in open_sections %} open{% endif %}><summary><b>{{ s.path }}</b>
{%- if s.optional %} (optional){% endif %}</summary><fieldset>
{% if s.help %}<p class="help">{{ s.help }}</p>{% endif %}
{% if s.optional %}<p><input type="hidden" name="{{ s.name }}" value="off"><label>
<input type="checkbox" name="{{ s.name }}" value="on"
{%- if values.get(s.name) == "on" %} checked{% endif %}> include this section</label>
<small>(unchecked: the config has no <code>{{ s.label }}:</code>)</small></p>{% endif %}
{% if s.fields %}{{ fields(s.fields) }}{% endif %}
{% for sub in s.sections %}{{ section(sub) }}{% endfor %}</fieldset></details>
{% endmacro %}
<form method="post" action="/runs" id="launch">
<input type="hidden" name="csrf_token" value="{{ csrf }}">
<input type="hidden" name="preset" value="{{ preset }}">
<p><label>Pipeline <select name="pipeline">{% for p in pipelines %}
<option {% if pipeline == p %}selected{% endif %}>{{ p }}</option>{% endfor %}</select>
</label>{% if pipeline_error %} <span class="err" data-field="pipeline">{{ pipeline_error }}
</span>{% endif %}</p>
{% if general_errors %}<ul class="err" id="form-errors">{% for e in general_errors %}
<li data-field="{{ e.field }}"><b>{{ e.field }}</b>: {{ e.message }}</li>{% endfor %}</ul>
{% endif %}<p class="help">Fields marked * are required. Only the fields you change are written
into the config; the rest keep the preset's values (or the defaults).</p>
{% if form.fields %}{{ fields(form.fields) }}{% endif %}
{% for s in form.sections %}{{ section(s) }}{% endfor %}
<p><button name="mode" value="form">Start</button></p>
<details id="yaml"{% if yaml_errors %} open{% endif %}><summary>Edit as YAML</summary>
<p class="help">The whole run config as text (the preset's, as loaded); launching it ignores
the fields above.</p>
<textarea name="config_text" rows="14">{{ config_text }}</textarea>
{% if yaml_errors %}<ul class="err" id="yaml-errors">{% for e in yaml_errors %}
<li data-field="{{ e.field }}"><b>{{ e.field }}</b>: {{ e.message }}</li>{% endfor %}</ul>
{% endif %}<p><button name="mode" value="yaml">Launch this YAML</button></p></details>
</form>
<script>
// choosing another pipeline opens the sections it uses most (the server opens them on load)
const PIPELINE_SECTIONS = {{ pipeline_sections|tojson }};
document.querySelector("#launch select[name=pipeline]").addEventListener("change", e => {
  for (const path of PIPELINE_SECTIONS[e.target.value] || []) {
    const d = document.getElementById("section-" + path); if (d) d.open = true; } });
</script>{% endif %}
<h2>All runs</h2>{% include "runs_table.html" %}{% endblock %}"""

_RUN = """{% extends "base.html" %}{% block body %}<h1>Run {{ r.id }} · {{ r.pipeline }}</h1>
<p>Status: <b id="status" class="status-{{ r.status }}">{{ r.status }}</b>
{% if can_run %}<button onclick="api('POST','/api/runs/{{ r.id }}/stop')">Stop</button>
<button onclick="api('POST','/api/runs/{{ r.id }}/rerun')">Run again with this config
</button> <a href="/runs?from_run={{ r.id }}" id="edit-copy">edit a copy</a>{% endif %}
<span id="result"></span></p>
<table><tr><th>who</th><td>{{ r.user }}</td></tr><tr><th>created</th>
<td>{{ r.created_at }}</td></tr><tr><th>config</th><td>{{ r.config_name }}
(sha256 {{ r.config_sha256 }})</td></tr><tr><th>exit code</th><td id="exit">
{{ r.exit_code }}</td></tr><tr><th>ZenML run</th><td><span id="zenml-run">
{{- zenml_run_name or r.zenml_run_name or "" }}</span>
{% if links.zenml %}<a href="{{ links.zenml }}">dashboard</a>{% endif %}</td></tr>
{% if links.mlflow %}<tr><th>MLflow</th><td><a id="mlflow-link" href="{{ links.mlflow }}">
{{ "run" if "/runs/" in links.mlflow else "experiment" if "/experiments/" in links.mlflow
else "MLflow UI" }}</a></td></tr>{% endif %}<tr><th>note</th><td>{{ r.note }}</td></tr></table>
<h2>Steps</h2><table id="steps"><tr><th>step</th><th>status</th><th>seconds</th></tr>
{% for s in steps %}<tr><td>{{ s.name }}</td><td class="step-{{ s.status }}">{{ s.status }}</td>
<td>{{ s.seconds or "" }}</td></tr>{% endfor %}</table>
<p id="steps-note">{{ steps_note }}</p>
<h2>Log</h2><pre id="log">{{ log }}</pre>
<details><summary>Config</summary><pre>{{ r.config_text }}</pre></details>{% endblock %}
{% block script %}<script>
async function steps() { const r = await fetch("/api/runs/{{ r.id }}");
  if (!r.ok) return; const d = await r.json(); const t = document.getElementById("steps");
  if (!d.steps.length && t.rows.length > 1) return;  // a failed run: keep the last steps seen
  while (t.rows.length > 1) t.deleteRow(1);
  for (const s of d.steps) { const row = t.insertRow();
    for (const v of [s.name, s.status, s.seconds ?? ""]) row.insertCell().textContent = v;
    row.cells[1].className = "step-" + s.status; }
  document.getElementById("steps-note").textContent = d.steps_note;
  if (d.zenml_run_name) document.getElementById("zenml-run").textContent = d.zenml_run_name; }
let poll = null;
const es = new EventSource("/api/runs/{{ r.id }}/events");
es.addEventListener("status", e => { const d = JSON.parse(e.data);
  const s = document.getElementById("status"); s.textContent = d.status;
  s.className = "status-" + d.status;
  document.getElementById("exit").textContent = d.exit_code ?? "";
  if (d.zenml_run_name) document.getElementById("zenml-run").textContent = d.zenml_run_name;
  if (d.status === "running" && poll === null) poll = setInterval(steps, 2000);
  if (["succeeded","failed","stopped"].includes(d.status)) { es.close();
    clearInterval(poll); steps(); } });
es.addEventListener("log", e => { const l = document.getElementById("log");
  l.textContent += JSON.parse(e.data); l.scrollTop = l.scrollHeight; });
</script>{% endblock %}"""

_MODELS = """{% extends "base.html" %}{% block body %}<h1>Model {{ m.name }}</h1>
<p>champion v{{ m.champion or "-" }} · challenger v{{ m.challenger or "-" }} · previous
champion v{{ m.previous_champion or "-" }}</p>
<table><tr><th>version</th><th>aliases</th><th>metrics</th><th>scored on</th><th>gate</th>
<th>decision</th>{% if m.versions and m.versions[0].links %}<th>MLflow</th>{% endif %}
{% if can_approve %}<th>promote</th>{% endif %}</tr>
{% for v in m.versions %}<tr id="version-{{ v.version }}"><td>{{ v.version }}</td>
<td>{{ v.aliases|join(", ") }}</td>
<td>{% for k, x in v.metrics.items() %}{{ k }}={{ x }}<br>{% endfor %}</td>
<td>{% if v.eval %}{{ v.eval.eval_split }} · {{ v.eval.eval_size }} examples<br>
<small>sha256 {{ (v.eval.eval_sha256 or "")[:12] }}</small>{% endif %}</td>
<td>{% for k, x in v.gate.items() %}{{ k }}={{ x }}<br>{% endfor %}</td>
<td>{{ v.decision or "" }}<br><small>{{ v.reason or "" }}</small></td>
{% if v.links %}<td><a class="mlflow-version" href="{{ v.links.version }}">version</a>
{% if v.links.run %}<br><a class="mlflow-run" href="{{ v.links.run }}">run</a>{% endif %}
</td>{% endif %}
{% if can_approve %}<td><button onclick="promote('{{ v.version }}')">promote</button></td>
{% endif %}</tr>{% endfor %}</table>
{% if can_approve %}<p><label>Reason <input id="reason"></label>
<label><input type="checkbox" id="force"> force (unsafe move)</label>
<button onclick="rollback()">Roll back</button></p>{% endif %}<p id="result"></p>
{% for sg in samples %}<details id="samples-{{ sg.version }}"><summary>Sample generations of
v{{ sg.version }} (prompt, reference, base, tuned, champion on the first test examples)
</summary>{% if sg.note %}<p>{{ sg.note }}</p>{% else %}<table><tr>{% for c in sg.columns %}
<th>{{ c }}</th>{% endfor %}</tr>{% for row in sg.rows %}<tr>{% for x in row %}
<td>{{ x if x is not none else "" }}</td>{% endfor %}</tr>{% endfor %}</table>{% endif %}
</details>{% endfor %}
<h2>History</h2><table id="history"><tr><th>when</th><th>action</th><th>from</th><th>to</th>
<th>actor</th><th>forced</th><th>reason</th></tr>{% for e in h %}<tr><td>{{ e.at }}</td>
<td>{{ e.action }}</td><td>{{ e.from_version or "-" }}</td><td>{{ e.to_version }}</td>
<td>{{ e.actor }}</td><td>{{ e.forced }}</td><td>{{ e.reason }}</td></tr>{% endfor %}
</table>{% endblock %}{% block script %}<script>
function opts() { return {force: document.getElementById("force").checked,
  reason: document.getElementById("reason").value || null}; }
async function promote(v) { if (await api("POST", "/api/models/{{ m.name }}/promote",
  Object.assign({version: v}, opts()))) location.reload(); }
async function rollback() { if (await api("POST", "/api/models/{{ m.name }}/rollback",
  opts())) location.reload(); }
</script>{% endblock %}"""

_CORPUS = """{% extends "base.html" %}{% block body %}<h1>Corpus</h1>
<p>{{ c.source_dir }}</p>{% if can_run %}<p><input type="file" id="file"
accept="{{ suffixes|join(',') }}"><button onclick="upload()">Upload</button></p>{% endif %}
<p id="result"></p><table><tr><th>document</th><th>status</th><th>reason</th>
<th>chunks</th><th>bytes</th></tr>{% for d in c.documents %}<tr><td>{{ d.name }}</td>
<td>{{ d.status }}</td><td>{{ d.reason or "" }}</td><td>{{ d.chunks or "" }}</td>
<td>{{ d.size_bytes }}</td></tr>{% endfor %}</table>{% endblock %}
{% block script %}<script>
async function upload() { const f = document.getElementById("file").files[0];
  if (!f) return; const fd = new FormData(); fd.append("file", f);
  if (await api("POST", "/api/corpus/upload", fd)) setTimeout(() => location.reload(), 800); }
</script>{% endblock %}"""

_ENV: list[Environment] = []


def environment() -> Environment:
    """The Jinja2 environment of the pages (HTML autoescaped)."""
    if not _ENV:
        _ENV.append(Environment(
            loader=DictLoader({"base.html": _BASE, "login.html": _LOGIN,
                               "overview.html": _OVERVIEW, "runs_table.html": _RUNS_TABLE,
                               "runs.html": _RUNS, "run.html": _RUN, "models.html": _MODELS,
                               "corpus.html": _CORPUS}),
            autoescape=select_autoescape(default=True, default_for_string=True)))
    return _ENV[0]


def render(name: str, **context: Any) -> str:
    """Render one page."""
    return environment().get_template(name).render(**context)
