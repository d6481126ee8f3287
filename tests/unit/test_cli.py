"""The CLI as users call it: original command names, exit codes, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from geomas.cli import app

runner = CliRunner()


def test_makedataset_writes_chunks_and_rejects(sample_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "parse_results"
    result = runner.invoke(app, ["makedataset", str(sample_corpus / "docs"), str(out),
                                 "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "docling-native-pdf" in result.output
    chunks = json.loads((out / "chunks.json").read_text("utf-8"))
    assert chunks and all(c["text"] for c in chunks)
    assert len((out / "rejects.jsonl").read_text("utf-8").splitlines()) == 4


def test_makedataset_failure_threshold_exit_code(sample_corpus: Path, tmp_path: Path) -> None:
    from geomas.cli import main

    out = tmp_path / "out"
    import sys

    argv = sys.argv
    sys.argv = ["geomas", "makedataset", str(sample_corpus / "docs"), str(out),
                "--workers", "1", "--max-failure-ratio", "0.1"]
    try:
        main()
    except SystemExit as exc:
        code = exc.code
    else:
        code = 0
    finally:
        sys.argv = argv
    assert code == 1
    # the good documents were still written
    assert json.loads((out / "chunks.json").read_text("utf-8"))


def test_missing_source_folder_is_one_line_error(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    import sys

    from geomas.cli import main

    argv = sys.argv
    sys.argv = ["geomas", "makedataset", str(tmp_path / "nope"), str(tmp_path / "out")]
    try:
        main()
    except SystemExit as exc:
        assert exc.code == 1
    finally:
        sys.argv = argv
    err = capsys.readouterr().err
    assert "does not exist" in err
    assert "Traceback" not in err


def test_sample_corpus_command(tmp_path: Path) -> None:
    result = runner.invoke(app, ["sample-corpus", str(tmp_path / "c"), "--docs", "2",
                                 "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "c/docs").iterdir())) == 2
    again = runner.invoke(app, ["sample-corpus", str(tmp_path / "c"), "--docs", "2"])
    assert again.exit_code != 0
