"""`geomas panel`: the control panel's settings (web app + REST API)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from geomas.config.base import StrictModel


class PanelConfig(StrictModel):
    """The control panel: where it keeps its records, what it serves, and its limits.

    A panel config file holds these keys at the top level (or under `panel:`). The project it
    controls (corpus folder, data dir, MLflow, registered model) comes from `run_config`.
    """

    run_config: Path = Field(
        default=Path("configs/local.yaml"),
        description="The project's run config: corpus folder, data dir, MLflow URIs, model.",
    )
    configs_dir: Path = Field(
        default=Path("configs"),
        description="Folder of run configs offered on the launch form (by file name).",
    )
    data_dir: Path | None = Field(
        default=None,
        description="Where the panel keeps its database, config copies and run logs; None: "
        "<project data dir>/panel.",
    )
    database_url: str | None = Field(
        default=None, min_length=1,
        description="SQLAlchemy URL of the run records; None: SQLite at <data_dir>/panel.db.",
    )
    users_file: Path | None = Field(
        default=None,
        description="YAML/JSON file of users and API tokens; GEOMAS_PANEL_USERS_FILE overrides.",
    )
    launcher: Literal["local", "kubernetes"] = Field(
        default="local",
        description="local: a child process per run on this machine; kubernetes: a Job per run.",
    )
    k8s_image: str | None = Field(
        default=None, description="launcher kubernetes: the geomas app image of the run Jobs."
    )
    k8s_namespace: str = Field(default="geomas", min_length=1,
                               description="launcher kubernetes: namespace of the run Jobs.")
    k8s_service_account: str = Field(
        default="geomas-orchestrator", min_length=1,
        description="launcher kubernetes: ServiceAccount of the run Jobs.",
    )
    max_upload_bytes: int = Field(
        default=200 * 1024 * 1024, ge=1, description="Largest document an upload may carry."
    )
    upload_suffixes: tuple[str, ...] = Field(
        default=(".pdf", ".docx", ".doc", ".rtf"),
        description="File suffixes an upload may have (lower case, with the dot).",
    )
    stop_timeout_seconds: float = Field(
        default=20.0, gt=0, description="After SIGTERM, a run still alive this long is killed."
    )
    login_max_failures: int = Field(
        default=5, ge=1, description="Failed logins per IP or per user name in the window -> 429."
    )
    login_window_seconds: float = Field(default=60.0, gt=0)
    session_max_age_seconds: int = Field(
        default=12 * 3600, ge=60, description="A browser session expires after this long."
    )
    poll_seconds: float = Field(
        default=1.0, gt=0, description="How often an adopted run (from before a restart) is "
        "checked, and how often the live stream looks for news.",
    )
    mlflow_ui_url: str | None = Field(
        default=None, description="Base URL of the MLflow UI, for links to runs (optional)."
    )
    zenml_dashboard_url: str | None = Field(
        default=None, description="Base URL of the ZenML dashboard, for links (optional)."
    )
