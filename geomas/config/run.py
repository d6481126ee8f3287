"""A whole run config file (configs/local.yaml): project, data, training, retrain, pods."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from geomas.config.base import StrictModel
from geomas.config.data import DataPipelineConfig
from geomas.config.kubernetes import KubernetesConfig
from geomas.config.retrain import RetrainConfig
from geomas.config.training import TrainingPipelineConfig
from geomas.names import LOCAL_STACK_NAME


class ProjectConfig(StrictModel):
    """Where the embedded stack and the run outputs live."""

    data_dir: Path = Field(
        default=Path(".geomas"),
        description="Project data dir: ZenML config, SQLite stores, artifacts, MLflow runs.",
    )
    experiment_name: str = Field(default="geomas", min_length=1)
    stack: str = Field(
        default=LOCAL_STACK_NAME,
        min_length=1,
        description=(
            "ZenML stack the pipelines run on. The embedded stack (geomas-local) is created on "
            "demand; any other stack must already be registered (`geomas stack import`)."
        ),
    )
    tracking_uri: str | None = Field(
        default=None, min_length=1,
        description="MLflow tracking URI (http(s) server or database) for every command and "
        "step of this project; MLFLOW_TRACKING_URI and --tracking-uri override it. None: the "
        "imported stack's tracker, else the embedded SQLite store under data_dir.",
    )
    registry_uri: str | None = Field(
        default=None, min_length=1,
        description="MLflow model registry URI; MLFLOW_REGISTRY_URI overrides it. None: the "
        "tracking URI.",
    )

    @field_validator("tracking_uri", "registry_uri")
    @classmethod
    def _no_password(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).password:
            raise ValueError(
                "holds a password, and config files end up in images and repositories: give a "
                "tracking server's credentials in MLFLOW_TRACKING_USERNAME/PASSWORD (or "
                "MLFLOW_TRACKING_TOKEN), or the whole URI in MLFLOW_TRACKING_URI / "
                "MLFLOW_REGISTRY_URI from a secret"
            )
        return value


class RunConfig(StrictModel):
    """A whole run config file (configs/local.yaml)."""

    project: ProjectConfig = ProjectConfig()
    data: DataPipelineConfig
    training: TrainingPipelineConfig | None = None
    retrain: RetrainConfig = Field(default_factory=lambda: RetrainConfig())
    kubernetes: KubernetesConfig | None = Field(
        default=None,
        description="Pod settings per step for a Kubernetes stack (project.stack); None: the "
        "stack's defaults.",
    )

    @model_validator(mode="after")
    def _kubernetes_paths(self) -> RunConfig:
        if self.kubernetes is None:
            return self
        if self.project.stack == LOCAL_STACK_NAME:
            raise ValueError(
                f"kubernetes: pod settings need a Kubernetes stack, but project.stack is "
                f"{LOCAL_STACK_NAME!r}; set project.stack (e.g. geomas-k8s, from "
                "`geomas stack import`) or drop the kubernetes section"
            )
        paths = {
            "data.source_dir": self.data.source_dir,
            "data.output_dir": self.data.output_dir,
            "data.ner.model_path": self.data.ner.model_path,
        }
        if self.training is not None:
            paths |= {
                "training.train_file": self.training.train_file,
                "training.val_file": self.training.val_file,
                "training.test_file": self.training.test_file,
                "training.output_dir": self.training.output_dir,
            }
        for name, path in paths.items():
            if path is not None and not Path(path).is_absolute():
                raise ValueError(
                    f"{name} ({path}) is relative; on Kubernetes the steps read and write "
                    "paths inside their pods: use an absolute path on a mounted volume "
                    "(e.g. /data/...)"
                )
        return self
