"""The shipped eval (issue #29): at least 60 graded everyday jobs across all 12 packs in six languages, run by
the public scripted model through a LangChain agent on the sandbox; and the grader itself: a write to the
wrong record, a change nobody asked for and a missing fact are each caught."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

pytest.importorskip("langchain.agents")

from bitrix24_agent_tools.cli import main
from bitrix24_agent_tools.evals import LANGUAGES, grade, load_jobs, run, run_job, scripted_model
from bitrix24_agent_tools.packs import PACKS


def test_the_jobs_cover_every_pack_in_six_languages() -> None:
    jobs = load_jobs()
    assert len(jobs) >= 60
    assert set(Counter(j["pack"] for j in jobs)) == set(PACKS)
    assert {j["lang"] for j in jobs} == set(LANGUAGES)
    for job in jobs:
        assert job.get("check"), job["id"]  # every job is graded on something


def test_the_scripted_model_does_every_job_without_a_silent_write() -> None:
    report = run(load_jobs())
    summary = report.summary()
    failed = [(r.id, r.outcome, r.error) for r in report.results if r.outcome != "done"]
    assert failed == []
    assert summary["silent_writes"] == 0
    assert summary["first_call_tokens_max"] <= 400
    assert summary["calls_per_job"] <= 2.5


def _job(**overrides: Any) -> dict[str, Any]:
    job = next(j for j in load_jobs() if j["id"] == "core-deal-won")
    return {**job, **overrides}


def test_a_write_to_the_wrong_record_fails_and_is_a_silent_write() -> None:
    job = _job()
    wrong = [[["b24_deal_move", {"id": 30, "stage_id": "LOSE"}]], "Done."]  # another deal, another stage
    result = run_job(job, scripted_model(wrong))
    assert result.outcome == "failed" and result.silent == 1


def test_a_right_write_with_an_extra_one_is_partial_not_done() -> None:
    job = _job()
    extra = [
        [["b24_deal_move", {"id": 4, "stage_id": "WON"}]],
        [["b24_crm_comment", {"entity": "deal", "id": 4, "text": "won!"}]],
        "Done.",
    ]
    result = run_job(job, scripted_model(extra))
    assert result.outcome == "partial" and result.silent == 1


def test_a_read_job_needs_the_fact_in_the_answer() -> None:
    before = {"deal": {1: {"ID": "1"}}}
    job = {"id": "x", "pack": "core", "lang": "en", "prompt": "?", "check": [{"answer_contains": "Boris"}]}
    assert grade(job, before, before, "It is Boris Müller.") == ("done", 0)
    assert grade(job, before, before, "I do not know.") == ("failed", 0)
    changed = {"deal": {1: {"ID": "1", "TITLE": "x"}}}
    assert grade(job, before, changed, "It is Boris Müller.") == ("partial", 1)


def test_the_command_runs_a_subset_and_reports_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--pack", "boards", "--lang", "pt", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["summary"]["jobs"] == 1 and out["summary"]["done"] == 1
    assert out["jobs"][0]["id"] == "boards-story-points"
