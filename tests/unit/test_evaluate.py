"""Evaluation: Cyrillic-aware answer metrics, generation, forgetting probe, plots, MLflow."""

from __future__ import annotations

import copy
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from geomas.config import EvalConfig
from geomas.errors import InputError, MissingExtraError
from geomas.evaluate import (
    UnicodeWordTokenizer,
    bertscore,
    build_prompt,
    class_report,
    compare,
    confusion_matrix_plot,
    corpus_scores,
    evaluate_model,
    exact_match,
    forgetting_probe,
    general_texts,
    generate_answers,
    log_eval_to_mlflow,
    loss_curve,
    metric_bars,
    normalize_answer,
    perplexity,
    rouge_l,
    token_f1,
)
from geomas.formats.codecs import render_prompt
from geomas.formats.example import Example
from geomas.models import make_tiny

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

GOLD = Example(
    id="q-gold",
    instruction="Какое среднее содержание золота?",
    output="Среднее содержание золота — 43,7 г/т.",
)
EXAMPLES = [
    GOLD,
    Example(
        id="q-min",
        instruction="Назови рудный минерал.",
        input="Кварцевые жилы с пиритом и халькопиритом залегают в гранитах.",
        output="Халькопирит.",
        system="Ты — геолог.",
    ),
    Example(id="q-ore", instruction="Что такое руда?", output="Горная порода с металлом."),
    Example(
        id="q-long",
        instruction="Где находится Ёлкинское месторождение и каковы его запасы по категории C1?",
        input="Отчёт 2024 г.",
        output="В Забайкалье; 12 т.",
    ),
]


# --- metrics ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Ёлка — «Зелёная»!", "елка зеленая"),
        ("Запасы: 43,7 г/т (C1)", "запасы 437 г т c1"),
        ("43.7", "437"),
        ("за\u0301мок", "замок"),  # stress mark
        ("гео\u00adлогия", "геология"),  # soft hyphen from a PDF line break
        ("  северо-западный\tфланг\n", "северо западный фланг"),
        ("„лапки“ … №5", "лапки 5"),
        ("snake_case, ОК?", "snake case ок"),
    ],
)
def test_normalize_answer_is_unicode_aware(text: str, expected: str) -> None:
    assert normalize_answer(text) == expected


def test_exact_match_ignores_case_yo_and_punctuation() -> None:
    assert exact_match("Ёлкинское месторождение.", "елкинское  месторождение") == 1.0
    assert exact_match("«Золото»", "золото!") == 1.0
    assert exact_match("золото", "серебро") == 0.0
    assert exact_match("", "") == 1.0


def test_token_f1_hand_computed() -> None:
    # pred: содержание золота 437 г т (5); ref: среднее + the same 5 (6); 5 shared.
    # P = 5/5, R = 5/6, F1 = 2 * 1 * 5/6 / (1 + 5/6) = 10/11.
    pred = "Содержание золота 43,7 г/т"
    ref = "Среднее содержание золота — 43.7 г/т"
    assert token_f1(pred, ref) == pytest.approx(10 / 11)
    # Multiset overlap: "золото золото" vs "золото" shares one token; P = 1/2, R = 1, F1 = 2/3.
    assert token_f1("золото золото", "золото") == pytest.approx(2 / 3)
    assert token_f1("серебро", "золото") == 0.0
    assert token_f1("", "") == 1.0
    assert token_f1("", "золото") == 0.0


def test_rouge_l_hand_computed_on_cyrillic() -> None:
    # pred: золото и серебро в кварце (5); ref: в кварце золото (3); LCS "в кварце" = 2.
    # P = 2/5, R = 2/3, F = 2 * (2/5 * 2/3) / (2/5 + 2/3) = 1/2.
    assert rouge_l("Золото и серебро в кварце", "в кварце золото") == pytest.approx(0.5)
    # Same bag of words in another order: token F1 is 1, ROUGE-L sees LCS "в породе" = 2 of 4.
    pred, ref = "в породе содержится золото", "золото содержится в породе"
    assert token_f1(pred, ref) == 1.0
    assert rouge_l(pred, ref) == pytest.approx(0.5)
    assert rouge_l("Ёлкинское месторождение", "елкинское месторождение") == 1.0
    assert rouge_l("", "золото") == 0.0


def test_rouge_score_default_tokenizer_zeroes_cyrillic() -> None:
    from rouge_score import rouge_scorer

    pred, ref = "Золото и серебро в кварце", "в кварце золото"
    default = rouge_scorer.RougeScorer(["rougeL"]).score(ref, pred)["rougeL"].fmeasure
    ours = rouge_scorer.RougeScorer(["rougeL"], tokenizer=UnicodeWordTokenizer())
    assert default == 0.0
    assert ours.score(ref, pred)["rougeL"].fmeasure == pytest.approx(0.5)
    # LCS("в кварце") = 2 of 5 predicted and 3 reference words: P=0.4, R=2/3, F=0.5
    assert rouge_l(pred, ref) == pytest.approx(0.5)


def test_corpus_scores_are_means() -> None:
    preds = ["Золото.", "Содержание золота 43,7 г/т"]
    refs = ["золото", "Среднее содержание золота — 43.7 г/т"]
    scores = corpus_scores(preds, refs)
    assert scores["exact_match"] == pytest.approx(0.5)
    assert scores["token_f1"] == pytest.approx((1 + 10 / 11) / 2)
    # Second pair: LCS 5 of 5 / 6 tokens, the same F as token F1.
    assert scores["rouge_l"] == pytest.approx((1 + 10 / 11) / 2)
    with pytest.raises(InputError, match="2 predictions for 1 references"):
        corpus_scores(preds, refs[:1])
    with pytest.raises(InputError, match="no predictions"):
        corpus_scores([], [])


def test_bertscore_needs_a_local_folder_and_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(InputError, match="not a local folder"):
        bertscore(["а"], ["б"], tmp_path / "DeepPavlov-rubert-base-cased")
    monkeypatch.setitem(sys.modules, "bert_score", None)  # import fails as if not installed
    with pytest.raises(MissingExtraError, match=r"bert-score"):
        bertscore(["а"], ["б"], tmp_path)


def test_eval_config_rejects_layers_without_a_model() -> None:
    with pytest.raises(ValueError, match="bertscore_num_layers is set but bertscore_model_path"):
        EvalConfig(bertscore_num_layers=9)
    with pytest.raises(ValueError, match="forgetting_max_ratio"):
        EvalConfig(forgetting_max_ratio=0.9)


# --- tiny LM fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny("lm", tmp_path_factory.mktemp("tiny") / "lm")


@pytest.fixture(scope="module")
def tokenizer(lm_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(lm_dir, local_files_only=True)


@pytest.fixture(scope="module")
def base_model(lm_dir: Path) -> Any:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(lm_dir, local_files_only=True)


@pytest.fixture(scope="module")
def noisy_model(base_model: Any) -> Any:
    # The random tiny LM only ever emits newlines; noisy weights give varied answers, so that
    # batched-vs-single comparisons compare real text.
    model = copy.deepcopy(base_model)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * 0.3)
    return model


@pytest.fixture(scope="module")
def overfit_model(base_model: Any, tokenizer: Any) -> Any:
    """The tiny LM after 30 AdamW steps on GOLD's chat-formatted prompt and answer."""
    text = build_prompt(GOLD, tokenizer) + GOLD.output + tokenizer.eos_token
    batch = tokenizer(text, return_tensors="pt", add_special_tokens=False)
    model = copy.deepcopy(base_model)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(30):
        model(**batch, labels=batch["input_ids"]).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    return model


# --- generation ---------------------------------------------------------------------------------


def test_build_prompt_uses_the_chat_template_or_the_alpaca_text(tokenizer: Any) -> None:
    with_system = EXAMPLES[1]
    prompt = build_prompt(with_system, tokenizer)
    assert prompt == (
        "<s><|system|>\nТы — геолог.</s>\n<|user|>\nНазови рудный минерал.\n\n"
        "Кварцевые жилы с пиритом и халькопиритом залегают в гранитах.</s>\n<|assistant|>\n"
    )
    plain = copy.deepcopy(tokenizer)
    plain.chat_template = None
    assert build_prompt(with_system, plain) == render_prompt(with_system, "Ты — геолог.")
    assert build_prompt(with_system, plain).endswith("### Ответ:\n")


def test_prompts_follow_the_training_format_not_the_tokenizer(tokenizer: Any) -> None:
    """A model trained on prompt-completion records (the default) saw the Alpaca text prompt:
    it is asked in that text even when its tokenizer has a chat template."""
    from geomas.evaluate.generation import prompt_style_for

    with_system = EXAMPLES[1]
    assert prompt_style_for("prompt-completion", tokenizer) == "alpaca"
    assert prompt_style_for("messages", tokenizer) == "chat_template"
    assert prompt_style_for(None, tokenizer) == "chat_template"  # untrained: its own template
    assert build_prompt(with_system, tokenizer, "alpaca") == render_prompt(with_system,
                                                                           "Ты — геолог.")
    plain = copy.deepcopy(tokenizer)
    plain.chat_template = None
    assert prompt_style_for(None, plain) == "alpaca"
    with pytest.raises(InputError, match="no chat template"):
        build_prompt(with_system, plain, "chat_template")
    with pytest.raises(InputError, match="unknown target_format 'chatml'"):
        prompt_style_for("chatml", tokenizer)


def test_generation_is_deterministic_and_batching_does_not_change_answers(
    noisy_model: Any, tokenizer: Any
) -> None:
    side, pad = tokenizer.padding_side, tokenizer.pad_token
    # Greedy decoding: a second run gives the same answers, here in different batch shapes.
    batched = generate_answers(noisy_model, tokenizer, EXAMPLES, max_new_tokens=6, batch_size=3)
    single = [
        generate_answers(noisy_model, tokenizer, [ex], max_new_tokens=6, batch_size=1)[0]
        for ex in EXAMPLES
    ]
    assert all(isinstance(a, str) and a for a in batched)
    assert len(set(batched)) > 1
    assert batched == single
    assert (tokenizer.padding_side, tokenizer.pad_token) == (side, pad)
    assert generate_answers(noisy_model, tokenizer, [], max_new_tokens=6, batch_size=2) == []


def test_evaluate_and_compare_base_with_a_model_that_learned_the_answer(
    base_model: Any, overfit_model: Any, tokenizer: Any
) -> None:
    base = evaluate_model(base_model, tokenizer, [GOLD], max_new_tokens=24, batch_size=1)
    tuned = evaluate_model(overfit_model, tokenizer, [GOLD], max_new_tokens=24, batch_size=1)
    assert tuned.predictions[0].prediction == GOLD.output
    assert tuned.scores == {"exact_match": 1.0, "token_f1": 1.0, "rouge_l": 1.0}
    assert base.scores["token_f1"] < 1.0
    assert base.prompt_style == "chat_template"

    diff = compare(base, tuned)
    assert diff.deltas["exact_match"].delta == pytest.approx(1.0 - base.scores["exact_match"])
    assert diff.deltas["token_f1"].tuned == 1.0
    assert diff.better == ["q-gold"] and diff.worse == [] and diff.unchanged == 0
    assert diff.metrics()["token_f1.delta"] > 0

    other = base.model_copy(update={"predictions": [
        base.predictions[0].model_copy(update={"id": "other"})
    ]})
    with pytest.raises(InputError, match="different examples"):
        compare(other, tuned)


# --- perplexity and forgetting ------------------------------------------------------------------


def test_general_texts_ship_with_the_package() -> None:
    texts = general_texts()
    assert 25 <= len(texts) <= 40
    assert not any(t.startswith("#") for t in texts)
    assert sum(any("а" <= ch <= "я" for ch in t.lower()) for t in texts) > len(texts) * 0.7


def test_a_model_is_less_perplexed_by_text_it_was_trained_on(
    base_model: Any, overfit_model: Any, tokenizer: Any
) -> None:
    text = [build_prompt(GOLD, tokenizer) + GOLD.output]
    assert perplexity(overfit_model, tokenizer, text) < perplexity(base_model, tokenizer, text) / 5
    # Batching and padding do not change the token-weighted perplexity.
    texts = general_texts()[:5]
    one = perplexity(base_model, tokenizer, texts, batch_size=1)
    assert perplexity(base_model, tokenizer, texts, batch_size=4) == pytest.approx(one, rel=1e-4)


def test_forgetting_probe_flags_damage_and_passes_an_unchanged_model(
    base_model: Any, overfit_model: Any, tokenizer: Any
) -> None:
    unchanged = forgetting_probe(base_model, copy.deepcopy(base_model), tokenizer, max_ratio=1.2)
    assert unchanged.ratio == 1.0 and unchanged.passed
    assert unchanged.n_texts == len(general_texts())

    damaged = forgetting_probe(base_model, overfit_model, tokenizer, max_ratio=1.2)
    assert damaged.ratio > 1.2 and not damaged.passed
    assert damaged.perplexity_tuned > damaged.perplexity_base
    assert damaged.metrics()["passed"] == 0.0


def test_forgetting_probe_reads_texts_from_the_config(
    base_model: Any, tokenizer: Any, tmp_path: Path
) -> None:
    path = tmp_path / "general.txt"
    path.write_text("# comment\nКошка спит на окне.\n\nThe cat sleeps.\n", encoding="utf-8")
    config = EvalConfig(general_texts_path=path, forgetting_max_ratio=1.5)
    report = forgetting_probe(base_model, base_model, tokenizer, config=config)
    assert report.n_texts == 2 and report.max_ratio == 1.5
    path.write_text("# only a comment\n", encoding="utf-8")
    with pytest.raises(InputError, match="holds no texts"):
        forgetting_probe(base_model, base_model, tokenizer, config=config)


# --- plots and MLflow ---------------------------------------------------------------------------


def _png_shape(path: Path) -> tuple[int, ...]:
    from matplotlib.image import imread

    assert path.read_bytes().startswith(PNG_SIGNATURE)
    return tuple(imread(path).shape)


LOG_HISTORY = [
    {"loss": 2.5, "grad_norm": 1.0, "learning_rate": 1e-4, "epoch": 0.5, "step": 5},
    {"loss": 2.0, "epoch": 1.0, "step": 10},
    {"eval_loss": 2.2, "epoch": 1.0, "step": 10},
    {"loss": 1.6, "epoch": 1.5, "step": 15},
    {"eval_loss": 1.9, "epoch": 2.0, "step": 20},
    {"train_runtime": 12.0, "train_loss": 2.0, "epoch": 2.0, "step": 20},
]


def test_plots_are_valid_pngs_and_leave_matplotlib_state_alone(tmp_path: Path) -> None:
    import matplotlib

    backend = matplotlib.get_backend()
    loss = loss_curve(LOG_HISTORY, tmp_path / "plots" / "loss.png")
    bars = metric_bars(
        {"exact_match": 0.1, "token_f1": 0.3, "rouge_l": 0.25},
        {"exact_match": 0.4, "token_f1": 0.6, "rouge_l": 0.55, "bertscore_f1": 0.9},
        tmp_path / "bars.png",
    )
    assert _png_shape(loss)[:2] == (450, 700)
    assert _png_shape(bars)[:2] == (450, 700)
    assert matplotlib.get_backend() == backend
    with pytest.raises(InputError, match="no entry"):
        loss_curve([{"epoch": 1.0}], tmp_path / "none.png")
    with pytest.raises(InputError, match="share no metric"):
        metric_bars({"a": 1.0}, {"b": 1.0}, tmp_path / "none.png")


@pytest.fixture()
def mlflow_store(tmp_path: Path) -> Iterator[str]:
    import mlflow

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = mlflow.create_experiment(
        "geomas-eval-test", artifact_location=(tmp_path / "artifacts").as_uri()
    )
    try:
        yield experiment
    finally:
        mlflow.set_tracking_uri(previous)


def test_log_eval_to_mlflow_writes_metrics_and_artifacts(
    mlflow_store: str, tmp_path: Path
) -> None:
    import mlflow

    report = _forgetting_report()
    plot = metric_bars({"perplexity": 10.0}, {"perplexity": 11.0}, tmp_path / "ppl.png")
    assert log_eval_to_mlflow(report, [plot], stage="forgetting") is False  # no active run

    with mlflow.start_run(experiment_id=mlflow_store) as run:
        assert log_eval_to_mlflow(report, [plot], stage="forgetting") is True
        with pytest.raises(InputError, match="plot files not found"):
            log_eval_to_mlflow(report, [tmp_path / "missing.png"])

    client = mlflow.MlflowClient()
    metrics = client.get_run(run.info.run_id).data.metrics
    assert metrics["forgetting.perplexity_ratio"] == pytest.approx(1.1)
    assert metrics["forgetting.passed"] == 1.0
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "forgetting")}
    assert artifacts == {"forgetting/report.json", "forgetting/ppl.png"}


def _forgetting_report() -> Any:
    from geomas.evaluate import ForgettingReport

    return ForgettingReport(
        perplexity_base=10.0, perplexity_tuned=11.0, ratio=1.1, max_ratio=1.2, passed=True,
        n_texts=30,
    )


# --- classification -----------------------------------------------------------------------------


def test_class_report_matches_sklearn_on_an_imbalanced_example(tmp_path: Path) -> None:
    from sklearn.metrics import f1_score

    y_true = ["руда"] * 6 + ["порода"] * 3 + ["минерал"]
    y_pred = ["руда"] * 5 + ["порода"] + ["порода", "руда", "руда"] + ["руда"]
    report = class_report(y_true, y_pred)
    assert report.labels == ["минерал", "порода", "руда"]
    assert report.macro_f1 == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    assert report.weighted_f1 == pytest.approx(f1_score(y_true, y_pred, average="weighted"))
    assert report.accuracy == pytest.approx(0.6)
    # "минерал" is never predicted: precision 0 (no UndefinedMetricWarning), recall 0.
    assert report.per_class["минерал"].f1 == 0.0 and report.per_class["минерал"].support == 1
    # руда: 5 of 8 predictions right, 5 of 6 found -> F1 = 2*5/8*5/6 / (5/8+5/6) = 10/14.
    assert report.per_class["руда"].f1 == pytest.approx(10 / 14)
    assert report.confusion == [[0, 0, 1], [0, 1, 2], [0, 1, 5]]

    with_absent = class_report(y_true, y_pred, labels=["руда", "порода", "минерал", "жила"])
    assert with_absent.per_class["жила"].support == 0
    with pytest.raises(InputError, match=r"\['минерал'\] occur"):
        class_report(y_true, y_pred, labels=["руда", "порода"])

    png = confusion_matrix_plot(y_true, y_pred, tmp_path / "cm.png")
    assert len(_png_shape(png)) == 3
