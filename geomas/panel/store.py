"""Run records in a real database (SQLAlchemy 2): SQLite by default, any SQLAlchemy URL else.

A record outlives the panel process: after a restart the run manager reads the records still
marked running and either adopts their process or closes them (`geomas.panel.runs`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Boolean, DateTime, Integer, String, Text, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

Pipeline = Literal["data", "training", "retrain-check"]
PIPELINES: tuple[Pipeline, ...] = ("data", "training", "retrain-check")
Status = Literal["queued", "running", "succeeded", "failed", "stopped"]
FINISHED: frozenset[str] = frozenset({"succeeded", "failed", "stopped"})


def utcnow() -> datetime:
    """Now, in UTC (stored naive-free)."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of the panel's tables."""


class RunRecord(Base):
    """One run started from the panel."""

    __tablename__ = "panel_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    pipeline: Mapped[str] = mapped_column(String(32), index=True)
    user: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    status: Mapped[str] = mapped_column(String(16), index=True, default="queued")
    config_name: Mapped[str] = mapped_column(String(256))
    config_text: Mapped[str] = mapped_column(Text)
    config_sha256: Mapped[str] = mapped_column(String(64))
    config_path: Mapped[str] = mapped_column(Text, default="")
    log_path: Mapped[str] = mapped_column(Text, default="")
    summary_path: Mapped[str] = mapped_column(Text, default="")
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    pid_start: Mapped[str | None] = mapped_column(String(32), nullable=True)
    host: Mapped[str | None] = mapped_column(String(256), nullable=True)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    zenml_run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    zenml_run_name: Mapped[str | None] = mapped_column(String(256), nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    stop_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    rerun_of: Mapped[int | None] = mapped_column(Integer, nullable=True)

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready values (the config text is left to the detail view)."""
        out: dict[str, Any] = {}
        for column in self.__table__.columns:
            value = getattr(self, column.name)
            out[column.name] = value.isoformat() if isinstance(value, datetime) else value
        out["duration_s"] = _duration(self.started_at, self.finished_at)
        return out


def _duration(start: datetime | None, end: datetime | None) -> float | None:
    if start is None:
        return None
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    end = end or utcnow()
    if end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    return round((end - start).total_seconds(), 1)


def open_store(url: str) -> sessionmaker[Any]:
    """Connect to the records database (creating the tables) and return a session factory."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, future=True, pool_pre_ping=True,
                           connect_args={"check_same_thread": False, "timeout": 30}
                           if url.startswith("sqlite") else {})
    if url.startswith("sqlite"):
        _sqlite_wal(engine)
    Base.metadata.create_all(engine)
    return sessionmaker(engine, expire_on_commit=False)


def _sqlite_wal(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _pragmas(conn: Any, _record: Any) -> None:  # readers never block the writer
        cursor = conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()
