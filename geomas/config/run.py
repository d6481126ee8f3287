"""A whole run config file (configs/local.yaml): project, data, training, retrain, pods."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

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
