"""docker/: the app, trainer and MLflow images, read as text (no Docker engine needed).

A small Dockerfile reader (continuation lines, comments, stages, ARG defaults) is enough for
what is checked: who the final stage runs as, what it is built from, what is installed and
where, and that the image names agree with configs/k8s.yaml, the chart and docs/deploy.md.
"""

from __future__ import annotations

import fnmatch
import functools
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
UID = 10001
LAYOUT_DIR = "/opt/docling-models"
IMAGES = {"app": "app.Dockerfile", "trainer": "trainer.Dockerfile", "mlflow": "mlflow.Dockerfile"}
GEOMAS_IMAGES = ("app", "trainer")  # the images that run geomas (and the pipelines)


@dataclass
class Stage:
    base: str
    name: str | None
    args: dict[str, str] = field(default_factory=dict)
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def expand(self, text: str) -> str:
        def sub(m: re.Match[str]) -> str:
            key = m.group(1) or m.group(2)
            return self.args.get(key, m.group(0))

        return re.sub(r"\$\{(\w+)\}|\$(\w+)", sub, text)

    def all(self, cmd: str) -> list[str]:
        return [self.expand(args) for c, args in self.instructions if c == cmd]

    def env(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for args in self.all("ENV"):
            for token in shlex.split(args):
                key, _, value = token.partition("=")
                out[key] = value
        return out


@dataclass
class Dockerfile:
    path: Path
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)

    def runs(self) -> str:
        return "\n".join(r for s in self.stages for r in s.all("RUN"))


def logical_lines(text: str) -> list[str]:
    """Instructions with continuation lines joined; comment lines dropped (also inside them)."""
    out: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1].strip() + " "
            continue
        out.append(current + line)
        current = ""
    assert not current, "dangling continuation line"
    return out


@functools.cache
def dockerfile(name: str) -> Dockerfile:
    path = DOCKER / IMAGES[name]
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical_lines(path.read_text(encoding="utf-8")):
        cmd, _, args = line.partition(" ")
        cmd, args = cmd.upper(), args.strip()
        if cmd == "ARG" and not stages:
            key, _, default = args.partition("=")
            global_args[key] = default
        elif cmd == "FROM":
            parts = args.split()
            base = Stage("", None, dict(global_args)).expand(parts[0])
            alias = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(base, alias))
        elif cmd == "ARG":
            key, _, default = args.partition("=")
            stages[-1].args[key] = default or global_args.get(key, "")
        else:
            stages[-1].instructions.append((cmd, args))
            if cmd == "ENV":
                stages[-1].args.update(stages[-1].env())
    return Dockerfile(path, stages)


def makefile_torch() -> str:
    m = re.search(r"^TORCH_SPEC \?= (\S+)$", (ROOT / "Makefile").read_text(), re.M)
    assert m
    return m.group(1)


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def image_path(ref: str) -> str:
    """`registry.example.com/geomas/app:0.1.0` -> `geomas/app` (no registry, tag, digest)."""
    ref = ref.split("@")[0]
    first, _, rest = ref.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost" or first.startswith("$")):
        ref = rest
    return re.sub(r":[^/]+$", "", ref)


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_reader_agrees_with_the_official_parser(name: str) -> None:
    """The reader above sees the same instructions as BuildKit's own parser."""
    official = pytest.importorskip(
        "dockerfile", reason="the `dockerfile` package (BuildKit's parser) is not installed"
    )
    path = DOCKER / IMAGES[name]
    theirs = [
        (c.cmd.upper(), " ".join(" ".join(c.flags + c.value).split()))
        for c in official.parse_file(str(path))
        if c.cmd.upper() not in {"ENV", "LABEL"}  # key/value pairs, formatted differently
    ]
    ours = [
        (cmd.upper(), " ".join(args.split()))
        for cmd, _, args in (line.partition(" ") for line in logical_lines(path.read_text()))
        if cmd.upper() not in {"ENV", "LABEL"}
    ]
    assert [c for c, _ in ours] == [c for c, _ in theirs]
    runs = [(c, a) for c, a in ours if c == "RUN"]
    assert runs == [(c, a) for c, a in theirs if c == "RUN"]


# --------------------------------------------------------------------------- every image


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_final_stage_runs_as_numeric_non_root_user(name: str) -> None:
    final = dockerfile(name).final
    users = final.all("USER")
    assert users, f"{name}: the final stage sets no USER (root)"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) == UID, users[-1]  # numeric: runAsNonRoot can check it
    assert not gid or (gid.isdigit() and int(gid) == UID)
    created = " ".join(final.all("RUN"))
    assert f"useradd --uid {UID}" in created and f"--gid {UID}" in created


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_multi_stage_keeps_build_tools_out(name: str) -> None:
    df = dockerfile(name)
    assert len(df.stages) >= 2
    final = df.final
    copies = final.all("COPY")
    assert any(c.startswith("--from=build") and "/opt/venv" in c for c in copies), copies
    # nothing installs into the final stage with pip/uv, nor brings the uv binary
    final_runs = " ".join(final.all("RUN"))
    assert not re.search(r"\b(pip|uv)\s+install\b", final_runs)
    assert not any("--from=uv" in c for c in copies)
    assert not re.search(r"build-essential|\bgcc\b|\bgit\b", final_runs)


@pytest.mark.parametrize("name", GEOMAS_IMAGES)
def test_geomas_images_are_offline_and_carry_configs(name: str) -> None:
    final = dockerfile(name).final
    env = final.env()
    assert env["HF_HUB_OFFLINE"] == "1"
    assert env["TRANSFORMERS_OFFLINE"] == "1"
    assert env["HF_HOME"] == "/models/hf"  # the geomas-model-cache PVC is mounted at /models
    assert final.all("WORKDIR")[-1] == "/app"
    assert any(re.fullmatch(r"(--chown=\S+ )?configs /app/configs", c) for c in final.all("COPY"))
    assert final.all("ENTRYPOINT") == ['["geomas"]']


@pytest.mark.parametrize("name", GEOMAS_IMAGES)
def test_torch_is_the_makefile_pin_installed_before_geomas(name: str) -> None:
    build = dockerfile(name).stage("build")
    runs = build.all("RUN")
    torch_at = next(i for i, r in enumerate(runs) if re.search(r"\btorch==", r))
    geomas_at = next(i for i, r in enumerate(runs) if re.search(r"install \"?\.(\[|\"|\s|$)", r))
    assert torch_at < geomas_at, "torch must be installed first so geomas keeps that build"
    assert makefile_torch() in runs[torch_at].split()


def test_sources_copied_into_the_images_exist_and_are_not_ignored() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(path: str) -> bool:
        result = False
        for pat in patterns:
            negate = pat.startswith("!")
            if fnmatch.fnmatch(path, pat.lstrip("!")) or path.startswith(pat.lstrip("!") + "/"):
                result = not negate
        return result

    for pat in (".venv", "demo_out", ".geomas", ".git", "tests"):
        assert pat in patterns
    for name in GEOMAS_IMAGES:
        for stage in dockerfile(name).stages:
            for copy in stage.all("COPY"):
                if "--from=" in copy:
                    continue
                *sources, _dest = [a for a in copy.split() if not a.startswith("--")]
                for src in sources:
                    assert (ROOT / src).exists(), f"{name}: COPY {src}: missing"
                    assert not ignored(src), f"{name}: COPY {src} is excluded by .dockerignore"


# --------------------------------------------------------------------------- trainer


def test_trainer_is_a_cuda_runtime_image() -> None:
    df = dockerfile("trainer")
    cuda = re.compile(r"^nvidia/cuda:\d+\.\d+(\.\d+)?-(cudnn-)?runtime-ubuntu\d+\.\d+$")
    assert cuda.match(df.final.base), df.final.base
    # the build stage uses the same base: the venv is built against the libraries it runs with
    assert df.stage("build").base == df.final.base


def test_trainer_installs_cuda_torch_gpu_extra_and_bitsandbytes() -> None:
    build = dockerfile("trainer").stage("build")
    runs = "\n".join(build.all("RUN"))
    assert re.search(r"--index-url https://download\.pytorch\.org/whl/cu\d+", runs)
    assert re.search(r"torchvision==\d+\.\d+\.\d+", runs)  # a matching CUDA pair, pinned
    assert re.search(r"install \"\.\[[^\]]*\bgpu\b", runs)
    assert re.search(r"\bbitsandbytes\b", runs)
    assert "uv python install 3.11" in runs


def test_trainer_bakes_layout_weights_readable_by_the_user() -> None:
    df = dockerfile("trainer")
    build, final = df.stage("build"), df.final
    runs = "\n".join(build.all("RUN"))
    assert re.search(
        rf"docling-tools models download layout tableformer -o {re.escape(LAYOUT_DIR)}", runs
    )
    readable = f"chmod -R a+rX {LAYOUT_DIR}" in runs
    copies = [c for c in final.all("COPY") if LAYOUT_DIR in c]
    assert copies and copies[0].startswith("--from=build")
    assert readable or f"--chown={UID}" in copies[0]
    env = final.env()
    assert env["GEOMAS_LAYOUT_ARTIFACTS_PATH"] == LAYOUT_DIR
    assert env["DOCLING_ARTIFACTS_PATH"] == LAYOUT_DIR


# --------------------------------------------------------------------------- app, mlflow


def test_app_is_cpu_only() -> None:
    df = dockerfile("app")
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", df.final.base)
    runs = "\n".join(df.stage("build").all("RUN"))
    assert "--index-url https://download.pytorch.org/whl/cpu torch==2.13.0" in runs
    assert not re.search(r"\b(gpu|layout)\b", " ".join(re.findall(r"\.\[[^\]]*\]", runs)))
    assert "torchvision" not in runs  # CPU torch + torchvision breaks transformers' import


def test_mlflow_server_version_is_one_geomas_accepts() -> None:
    df = dockerfile("mlflow")
    version = df.stage("build").args["MLFLOW_VERSION"]
    pyproject = (ROOT / "pyproject.toml").read_text()
    spec = next(
        Requirement(m) for m in re.findall(r'"(mlflow[^"]*)"', pyproject) if m.startswith("mlflow")
    )
    assert spec.specifier.contains(version), (version, str(spec))
    runs = "\n".join(df.stage("build").all("RUN"))
    for package in ("psycopg2-binary", "boto3"):  # postgres backend store, S3 artifact proxy
        assert package in runs
    # the chart runs `mlflow server --app-name basic-auth`, whose app needs the auth extra
    assert f'"mlflow[auth]=={version}"' in runs


# --------------------------------------------------------------------------- names agree


def header_image(name: str) -> str:
    text = (DOCKER / IMAGES[name]).read_text()
    m = re.search(r"Referenced as <registry>/(\S+):<tag>", text)
    assert m, f"{IMAGES[name]}: no 'Referenced as <registry>/...:<tag>' line"
    return m.group(1)


def k8s_config_images() -> dict[str, str]:
    """The app/trainer image references in configs/k8s.yaml (ZenML DockerSettings)."""
    config = ROOT / "configs" / "k8s.yaml"
    assert config.is_file(), "configs/k8s.yaml (the Kubernetes run config) is missing"
    found: dict[str, str] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            node = list(node.values())
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, str):
            m = re.search(r"(?:^|/)geomas/(app|trainer)(?::|@|$)", node)
            if m:
                assert found.setdefault(m.group(1), node) == node, "two different images"

    walk(load_yaml(config))
    return found


def test_k8s_config_names_the_images_built_here() -> None:
    images = k8s_config_images()
    assert set(images) == set(GEOMAS_IMAGES), images
    for name, ref in images.items():
        assert image_path(ref) == header_image(name) == f"geomas/{name}"
    # both from the same registry
    assert len({ref.split("/")[0] for ref in images.values()}) == 1


def test_chart_runs_the_images_built_here() -> None:
    values = load_yaml(ROOT / "charts" / "geomas" / "values.yaml")
    assert image_path(values["retrain"]["image"]["repository"]) == header_image("app")
    assert image_path(values["mlflow"]["image"]["repository"]) == header_image("mlflow")
    app = k8s_config_images()["app"]
    assert values["retrain"]["image"]["repository"] == app.rsplit(":", 1)[0]


def test_docs_build_the_same_images() -> None:
    docs = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    builds = re.findall(r"docker build -f (docker/\S+) -t (\S+) \.", docs)
    built = {Path(f).name: image_path(tag) for f, tag in builds}
    assert built == {IMAGES[name]: header_image(name) for name in IMAGES}, built
    for name, ref in k8s_config_images().items():
        assert image_path(ref) in built.values(), name
