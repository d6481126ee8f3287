"""The launch form: generated from RunConfig, filled from presets, read back into YAML with only
the user's changes, validated before anything starts, errors shown on their fields."""

from __future__ import annotations

import copy
import hashlib
import re
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import yaml

from geomas.config import RunConfig
from geomas.panel.form import (
    apply_form,
    field_for_error,
    form_for,
    initial_values,
    place_errors,
)
from geomas.panel.runs import FieldErrors, validate_run_config
from tests.panel.conftest import Project, bearer, login

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
FORM = form_for(RunConfig)


def local_raw() -> dict[str, Any]:
    return yaml.safe_load((CONFIGS / "local.yaml").read_text("utf-8"))


def schema_leaves(schema: dict[str, Any]) -> set[str]:
    """Leaf paths of RunConfig from its JSON schema: a walk independent of geomas.panel.form."""
    defs = schema["$defs"]

    def model_of(prop: dict[str, Any]) -> dict[str, Any] | None:
        refs = [prop] if "$ref" in prop else [
            p for p in prop.get("anyOf", []) if p.get("type") != "null"]
        if len(refs) != 1 or "$ref" not in refs[0]:
            return None
        target = defs[refs[0]["$ref"].rsplit("/", 1)[1]]
        return target if "properties" in target else None

    def walk(node: dict[str, Any], prefix: str) -> set[str]:
        out: set[str] = set()
        for key, prop in node["properties"].items():
            sub = model_of(prop)
            out |= walk(sub, f"{prefix}{key}.") if sub is not None else {prefix + key}
        return out

    return walk(schema, "")


def nested(path: str, value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    here = out
    *parents, last = path.split(".")
    for key in parents:
        here = here.setdefault(key, {})
    here[last] = value
    return out


# ---- the form of RunConfig ------------------------------------------------------------------
def test_every_leaf_field_of_runconfig_appears_once_with_a_path_runconfig_accepts() -> None:
    from pydantic import ValidationError

    paths = [f.path for f in FORM.leaves()]
    assert len(paths) == len(set(paths))
    assert set(paths) == schema_leaves(RunConfig.model_json_schema())
    assert len(paths) > 150  # the whole model, not a hand-picked subset

    def extra_keys(raw: dict[str, Any]) -> list[Any]:
        try:
            RunConfig.model_validate(raw)
        except ValidationError as exc:
            return [e["loc"] for e in exc.errors() if e["type"] == "extra_forbidden"]
        return []

    assert extra_keys(nested("data.ingest.no_such_field", 1))  # the check can fail
    for path in paths:
        assert extra_keys(nested(path, "x")) == [], path


def test_widgets_follow_the_field_types() -> None:
    by_path = {f.path: f for f in FORM.leaves()}
    assert by_path["training.sft.packing"].kind == "bool"
    assert by_path["training.sft.packing"].choices == ("true", "false")
    assert by_path["training.sft.method"].kind == "choice"
    assert by_path["training.sft.method"].choices == ("full", "lora", "qlora")
    assert by_path["training.sft.max_length"].kind == "int"
    assert by_path["training.sft.learning_rate"].kind == "float"
    assert by_path["data.source_dir"].kind == "text" and by_path["data.source_dir"].required
    assert by_path["data.ingest.extensions"].kind == "yaml"  # a tuple
    # int | "auto": a union of several types is YAML
    assert by_path["training.sft.per_device_train_batch_size"].kind == "yaml"
    stratify = by_path["data.split.stratify_by"]  # Literal | None
    assert stratify.kind == "choice" and stratify.nullable and stratify.default_text == "label"
    assert "Tokens per example" in by_path["training.sft.max_length"].help
    sections = {s.path: s for s in FORM.all_sections()}
    assert sections["training"].optional and sections["kubernetes"].optional
    assert not sections["data"].optional and sections["data"].required
    assert sections["data.ingest"].help  # the model's description


def test_an_unchanged_form_gives_back_exactly_the_preset() -> None:
    for name in ("local.yaml", "k8s.yaml"):
        raw = yaml.safe_load((CONFIGS / name).read_text("utf-8"))
        values = initial_values(FORM, raw)
        assert apply_form(FORM, raw, values) == raw, name
        # a browser sends textareas with CRLF line ends: still no change
        crlf = {k: v.replace("\n", "\r\n") for k, v in values.items()}
        assert apply_form(FORM, raw, crlf) == raw, name


def test_a_changed_int_field_is_written_and_nothing_else_changes() -> None:
    raw = local_raw()
    values = initial_values(FORM, raw)
    assert values["f.training.sft.max_length"] == "384"
    assert values["f.data.ingest.max_tokens"] == "256"  # a default: the preset omits ingest
    new = apply_form(FORM, raw, {**values, "f.training.sft.max_length": "512"})
    expected = copy.deepcopy(raw)
    expected["training"]["sft"]["max_length"] = 512
    assert new == expected  # no defaults materialised (no data.ingest, no retrain, ...)
    text = yaml.safe_dump(new, sort_keys=False, allow_unicode=True)
    config = validate_run_config("training", text)
    assert config.training is not None and config.training.sft.max_length == 512
    # a field the preset leaves out is added alone, under its section
    new = apply_form(FORM, raw, {**values, "f.data.ingest.max_tokens": "300"})
    assert new["data"]["ingest"] == {"max_tokens": 300}


def test_texts_are_converted_to_the_field_types() -> None:
    raw = local_raw()
    values = initial_values(FORM, raw)
    new = apply_form(FORM, raw, {
        **values, "f.training.sft.packing": "true", "f.training.sft.learning_rate": "0.01",
        "f.data.ner.model_path": "",  # nullable: empty is None
        "f.data.ingest.extensions": "[.pdf, .md]",
        "f.training.sft.per_device_train_batch_size": "4",
        "f.training.sft.max_steps": "many"})  # left as text: pydantic names the field
    sft = new["training"]["sft"]
    assert (sft["packing"], sft["learning_rate"], sft["per_device_train_batch_size"]) == (
        True, 0.01, 4)
    assert new["data"]["ner"]["model_path"] is None
    assert new["data"]["ingest"]["extensions"] == [".pdf", ".md"]
    with pytest.raises(FieldErrors) as caught:
        validate_run_config("training", yaml.safe_dump(new))
    on_fields, rest = place_errors(FORM, caught.value.errors)
    assert list(on_fields) == ["training.sft.max_steps"] and rest == []


def test_a_key_the_preset_spells_with_an_alias_keeps_its_spelling() -> None:
    raw = local_raw()
    sft = raw["training"]["sft"]
    sft["epochs"] = sft.pop("num_train_epochs")
    values = initial_values(FORM, raw)
    assert values["f.training.sft.num_train_epochs"] == "8"
    new = apply_form(FORM, raw, {**values, "f.training.sft.num_train_epochs": "0"})
    assert new["training"]["sft"]["epochs"] == 0 and "num_train_epochs" not in new["training"][
        "sft"]
    with pytest.raises(FieldErrors) as caught:
        validate_run_config("training", yaml.safe_dump(new))
    assert [e["field"] for e in caught.value.errors] == ["training.sft.epochs"]
    assert field_for_error(FORM, "training.sft.epochs") == "training.sft.num_train_epochs"


def test_an_optional_section_is_toggled_off_and_on() -> None:
    raw = local_raw()
    values = initial_values(FORM, raw)
    assert (values["s.training"], values["s.kubernetes"]) == ("on", "off")
    off = apply_form(FORM, raw, {**values, "s.training": "off"})
    assert "training" not in off and {k: v for k, v in raw.items() if k != "training"} == off
    validate_run_config("data", yaml.safe_dump(off))
    with pytest.raises(FieldErrors, match="needs a `training:` section"):
        validate_run_config("training", yaml.safe_dump(off))
    # toggled off, its fields' changes are not written
    assert "training" not in apply_form(FORM, raw, {**values, "s.training": "off",
                                                     "f.training.sft.max_length": "99"})
    # toggled on: the section is created with what was filled in; required fields missing
    # from it are reported on those fields
    on = apply_form(FORM, raw, {**values, "s.kubernetes": "on",
                                "f.kubernetes.images.app": "registry/geomas:1"})
    assert on["kubernetes"]["images"] == {"app": "registry/geomas:1"}
    assert {k: v for k, v in on.items() if k != "kubernetes"} == raw
    with pytest.raises(FieldErrors) as caught:
        validate_run_config("data", yaml.safe_dump(on))
    on_fields, _rest = place_errors(FORM, caught.value.errors)
    assert {"kubernetes.images.trainer", "kubernetes.orchestrator.service_account"} <= set(
        on_fields)
    assert on_fields["kubernetes.images.trainer"] == "Field required"
    # an absent toggle (a client that sends no fields) leaves the section as it was
    assert apply_form(FORM, raw, {}) == raw


def test_bad_yaml_in_a_yaml_field_is_an_error_on_that_field() -> None:
    raw = local_raw()
    values = initial_values(FORM, raw)
    with pytest.raises(FieldErrors) as caught:
        apply_form(FORM, raw, {**values, "f.data.ingest.extensions": "[.pdf, .md",
                               "f.training.sft.max_length": "512"})
    assert [e["field"] for e in caught.value.errors] == ["data.ingest.extensions"]
    assert "not valid YAML" in caught.value.errors[0]["message"]


def test_errors_go_to_the_deepest_field_at_or_above_them() -> None:
    assert field_for_error(FORM, "data.validation.min_cyrillic_share.geology") == (
        "data.validation.min_cyrillic_share")
    assert field_for_error(FORM, "data.qa.templates.geology.0") == "data.qa.templates"
    assert field_for_error(FORM, "training.sft.lora.r") == "training.sft.lora.r"
    assert field_for_error(FORM, "training") is None  # a whole section
    assert field_for_error(FORM, "data.no_such_key") is None
    on_fields, rest = place_errors(FORM, [
        {"field": "data.qa.templates.geology.0", "message": "bad"},
        {"field": "(root)", "message": "kubernetes needs a stack"}])
    assert on_fields == {"data.qa.templates": "geology.0: bad"}
    assert rest == [{"field": "(root)", "message": "kubernetes needs a stack"}]


# ---- the page --------------------------------------------------------------------------------
class FormReader(HTMLParser):
    """The controls of one form as a browser submits them, plus the error spans."""

    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id, self.inside = form_id, False
        self.pairs: list[tuple[str, str]] = []
        self.errors: dict[str, str] = {}
        self._select: tuple[str, list[tuple[str, bool]]] | None = None
        self._option: tuple[str | None, bool, list[str]] | None = None
        self._text: tuple[str, list[str]] | None = None  # a textarea or an error span

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = a.get("id") == self.form_id
        if not self.inside:
            return
        if tag == "input" and a.get("type", "text") in ("text", "hidden") and "name" in a:
            self.pairs.append((a["name"], a.get("value", "")))
        elif tag == "input" and a.get("type") == "checkbox" and "checked" in a:
            self.pairs.append((a["name"], a.get("value", "on")))
        elif tag == "select":
            self._select = (a["name"], [])
        elif tag == "option":
            self._option = (dict(attrs).get("value"), "selected" in a, [])
        elif tag == "textarea":
            self._text = ("textarea:" + a["name"], [])
        elif tag == "span" and a.get("class") == "err":
            self._text = ("error:" + a.get("data-field", ""), [])

    def handle_data(self, data: str) -> None:
        for open_text in (self._option[2] if self._option else None,
                          self._text[1] if self._text else None):
            if open_text is not None:
                open_text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        if tag == "option" and self._option is not None and self._select is not None:
            value, selected, text = self._option
            self._select[1].append((value if value is not None else "".join(text).strip(),
                                    selected))
            self._option = None
        elif tag == "select" and self._select is not None:
            name, options = self._select
            chosen = [v for v, selected in options if selected] or [options[0][0]]
            self.pairs.append((name, chosen[-1]))
            self._select = None
        elif tag in ("textarea", "span") and self._text is not None:
            kind, name = self._text[0].split(":", 1)
            text = "".join(self._text[1])
            if kind == "textarea":
                self.pairs.append((name, text[1:] if text.startswith("\n") else text))
            else:
                self.errors[name] = text
            self._text = None


def read_form(html: str, form_id: str = "launch") -> FormReader:
    reader = FormReader(form_id)
    reader.feed(html)
    return reader


def submit(client: Any, html: str, changes: dict[str, str] | None = None,
           button: tuple[str, str] = ("mode", "form"), drop: tuple[str, ...] = ()) -> Any:
    """Post the launch form as a browser would, with some fields changed."""
    data: dict[str, list[str]] = {}
    for name, value in read_form(html).pairs:
        if name not in drop:
            data.setdefault(name, []).append(value)
    for name, value in (changes or {}).items():
        data[name] = [*data.get(name, [])[:-1], value]
    data[button[0]] = [button[1]]
    return client.post("/runs", data=data, follow_redirects=False)


def wait_finished(client: Any, run_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + 90
    while True:
        run = client.get(f"/api/runs/{run_id}", headers=bearer("viewer")).json()
        if run["status"] not in ("queued", "running"):
            return run
        assert time.monotonic() < deadline, run
        time.sleep(0.2)


def test_the_form_shows_the_preset_and_the_model_fields(client: Any, project: Project) -> None:
    login(client, "oleg")
    page = client.get("/runs?preset=project.yaml")
    assert page.status_code == 200
    fields = dict(read_form(page.text).pairs)
    assert fields["preset"] == "project.yaml"
    assert fields["f.data.source_dir"] == str(project.corpus)
    assert fields["f.training.model"] == str(project.root / "no-model")
    assert fields["f.data.ingest.max_tokens"] == "256"  # the model's default
    assert fields["f.training.sft.method"] == "qlora"
    assert fields["s.training"] == "on" and fields["s.kubernetes"] == "off"
    assert {f.name for f in FORM.leaves()} <= set(fields)
    # the data pipeline's sections are open, the others collapsed
    assert re.search(r'id="section-data" open>', page.text)
    assert re.search(r'id="section-training">', page.text)
    training = client.get("/runs?preset=project.yaml&pipeline=training").text
    assert re.search(r'id="section-training" open>', training)
    assert re.search(r'id="section-data">', training)
    other = dict(read_form(client.get("/runs?preset=fail-data.yaml").text).pairs)
    assert other["f.data.source_dir"] == str(project.root / "no-such-corpus")
    unknown = client.get("/runs?preset=nope.yaml")
    assert unknown.status_code == 404 and "fail-data.yaml" in unknown.text
    login(client, "vera")  # a viewer sees the runs, not the form
    assert 'name="f.data.source_dir"' not in client.get("/runs?preset=project.yaml").text


def test_invalid_values_are_shown_on_their_fields_and_nothing_starts(
        client: Any, project: Project) -> None:
    login(client, "oleg")
    page = client.get("/runs?preset=project.yaml&pipeline=training").text
    got = submit(client, page, {"pipeline": "training", "f.training.sft.num_train_epochs": "0",
                                "f.training.sft.max_length": "many"})
    assert got.status_code == 422
    again = read_form(got.text)
    assert "greater than 0" in again.errors["training.sft.num_train_epochs"]
    assert "valid integer" in again.errors["training.sft.max_length"]
    kept = dict(again.pairs)  # what was typed stays in the form
    assert (kept["f.training.sft.num_train_epochs"], kept["f.training.sft.max_length"]) == (
        "0", "many")
    assert kept["pipeline"] == "training" and kept["preset"] == "project.yaml"
    assert re.search(r'id="section-training.sft" open>', got.text)
    # bad YAML in a YAML field
    got = submit(client, page, {"f.data.ingest.extensions": "[.pdf"})
    assert got.status_code == 422
    assert "not valid YAML" in read_form(got.text).errors["data.ingest.extensions"]
    # an error that is no field's: listed above the form
    got = submit(client, page, {"pipeline": "training", "s.training": "off"})
    assert got.status_code == 422
    listed = re.search(r'<ul class="err" id="form-errors">(.*?)</ul>', got.text, re.S)
    assert listed is not None and "needs a `training:` section" in listed.group(1)
    assert client.get("/api/runs", headers=bearer("viewer")).json() == []


def test_a_valid_change_starts_a_run_with_the_changed_config(client: Any,
                                                             project: Project) -> None:
    login(client, "oleg")
    page = client.get("/runs?preset=fail-data.yaml").text
    got = submit(client, page, {"f.data.ingest.max_tokens": "300"})
    assert got.status_code == 303, got.text
    run_id = int(got.headers["location"].rsplit("/", 1)[1])
    run = wait_finished(client, run_id)
    stored = yaml.safe_load(run["config_text"])
    preset = yaml.safe_load((project.root / "configs" / "fail-data.yaml").read_text())
    assert stored["data"]["ingest"] == {"max_tokens": 300}
    stored["data"].pop("ingest")
    assert stored == preset  # nothing else changed, no defaults written
    assert run["config_name"] == "fail-data.yaml (edited)" and run["pipeline"] == "data"
    # the run page offers an editable copy; it fills the form with that run's config
    assert f'href="/runs?from_run={run_id}"' in client.get(f"/runs/{run_id}").text
    copy_page = client.get(f"/runs?from_run={run_id}")
    fields = dict(read_form(copy_page.text).pairs)
    assert fields["preset"] == f"run:{run_id}" and fields["pipeline"] == "data"
    assert fields["f.data.ingest.max_tokens"] == "300"
    assert fields["f.data.source_dir"] == str(project.root / "no-such-corpus")
    # unchanged, it runs that config again: the same text, a rerun of it
    got = submit(client, copy_page.text)
    assert got.status_code == 303
    again = wait_finished(client, int(got.headers["location"].rsplit("/", 1)[1]))
    assert again["config_sha256"] == run["config_sha256"] and again["rerun_of"] == run_id
    assert client.get("/runs?from_run=999").status_code == 404


def test_an_unchanged_file_preset_runs_the_file_as_it_is(client: Any, project: Project) -> None:
    login(client, "oleg")
    got = submit(client, client.get("/runs?preset=fail-data.yaml").text)
    assert got.status_code == 303
    run = wait_finished(client, int(got.headers["location"].rsplit("/", 1)[1]))
    text = (project.root / "configs" / "fail-data.yaml").read_text()
    assert run["config_text"] == text and run["config_name"] == "fail-data.yaml"
    assert run["config_sha256"] == hashlib.sha256(text.encode()).hexdigest()


def test_pasted_yaml_still_works_and_the_form_needs_csrf(client: Any, project: Project) -> None:
    login(client, "oleg")
    page = client.get("/runs?preset=fail-data.yaml").text
    got = submit(client, page, {"config_text": "data: {source_dir: 3}\n"},
                 button=("mode", "yaml"))
    assert got.status_code == 422
    listed = re.search(r'<ul class="err" id="yaml-errors">(.*?)</ul>', got.text, re.S)
    assert listed is not None and "data.output_dir" in listed.group(1)
    no_csrf = submit(client, page, {"f.data.ingest.max_tokens": "300"}, drop=("csrf_token",))
    assert no_csrf.status_code == 403 and "CSRF" in no_csrf.text
    assert client.get("/api/runs", headers=bearer("viewer")).json() == []
