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


def _exit_code(args: list[str]) -> object:
    """Run the real entry point (`geomas ARGS`, as a shell does) and return its exit code."""
    import sys

    from geomas.cli import main

    argv = sys.argv
    sys.argv = ["geomas", *args]
    try:
        main()
    except SystemExit as exc:
        return exc.code
    finally:
        sys.argv = argv
    return 0


def test_makedataset_failure_threshold_exit_code(sample_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code = _exit_code(["makedataset", str(sample_corpus / "docs"), str(out),
                       "--workers", "1", "--max-failure-ratio", "0.1"])
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


def test_clean_dataset_reads_qa_pairs_and_the_whole_clean_section(tmp_path: Path) -> None:
    """clean-dataset cleans qa_pairs.json as the pipeline's clean step does, with every field of
    the config's `clean:` section (not only the profile)."""
    context = ("Месторождение Кедровое расположено в Билибинском районе. Средние содержания "
               "серебра составляют 430 г/т, меди 1,2 %.")
    pairs = [{"qa_id": f"q{k}", "question": question, "answer": answer, "entity_type": "DEPOSIT",
              "source_text": context, "context": context, "doc_id": "d" * 64}
             for k, (question, answer) in enumerate([
                 ("Где расположено месторождение Кедровое?", "в Билибинском районе"),
                 ("Каковы средние содержания серебра?",
                  "Средние содержания серебра составляют 430 г/т, меди 1,2 %.")])]
    qa = tmp_path / "qa_pairs.json"
    qa.write_text(json.dumps(pairs, ensure_ascii=False), encoding="utf-8")
    config = tmp_path / "run.yaml"
    config.write_text("clean:\n  min_output_chars: 30\n", encoding="utf-8")

    result = runner.invoke(app, ["clean-dataset", str(qa), str(tmp_path / "all.json")])
    assert result.exit_code == 0, result.output
    assert [r["id"] for r in json.loads((tmp_path / "all.json").read_text("utf-8"))] == [
        "q0", "q1"]
    result = runner.invoke(app, ["clean-dataset", str(qa), str(tmp_path / "long.json"),
                                 "--config", str(config)])
    assert result.exit_code == 0, result.output
    rejects = [json.loads(x) for x in
               (tmp_path / "long_rejects.jsonl").read_text("utf-8").splitlines()]
    assert [(r["id"], r["rule"]) for r in rejects] == [("q0", "length")]


def test_makedataset_validates_per_document_like_the_pipeline(
    tmp_path: Path, capsys  # type: ignore[no-untyped-def]
) -> None:


    src = tmp_path / "docs"
    src.mkdir()
    russian = ("Месторождение приурочено к зоне контакта гранитов с известняками. Рудные тела "
               "представлены скарнами мощностью от 2 до 15 м, содержание меди 1,2 %.")
    for name in ("a.md", "b.md"):
        (src / name).write_text(f"# Отчёт {name}\n\n{russian}\n", encoding="utf-8")
    (src / "english.md").write_text(
        "# Report\n\nThe deposit is hosted by skarns at the contact of granites.\n", "utf-8")

    result = runner.invoke(app, ["makedataset", str(src), str(tmp_path / "out"),
                                 "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "geomas_chunks    : 1 of 3 documents excluded" in result.output
    assert "excluded english.md: expect_column_values_to_be_between(cyrillic_share)" in (
        result.output)
    chunks = json.loads((tmp_path / "out/chunks.json").read_text("utf-8"))
    assert sorted({c["source"] for c in chunks}) == ["a.md", "b.md"]
    (reject,) = (tmp_path / "out/validation/rejects.jsonl").read_text("utf-8").splitlines()
    assert json.loads(reject)["source"] == "english.md"

    code = _exit_code(["makedataset", str(src), str(tmp_path / "fail"), "--workers", "1",
                       "--validation-policy", "fail"])
    assert code == 1
    err = capsys.readouterr().err
    assert "english.md: expect_column_values_to_be_between(cyrillic_share)" in err
    assert "Traceback" not in err
