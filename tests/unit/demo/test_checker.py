"""The checker's decision on a sweep that heard two leaders (demo/checker.at_once), on plain dicts."""

from __future__ import annotations

from demo.checker import at_once

OLD, NEW = {"metadata": {"name": "old"}}, {"metadata": {"name": "new"}}


def test_the_old_leader_still_leading_in_its_term_after_the_new_one_answered_is_two_leaders():
    claims = [(OLD, {"is_leader": True, "term": 3}), (NEW, {"is_leader": True, "term": 4})]
    assert at_once(claims, lambda pod: {"is_leader": True, "term": 3})


def test_a_handover_between_two_answers_of_one_sweep_is_not():
    claims = [(OLD, {"is_leader": True, "term": 3}), (NEW, {"is_leader": True, "term": 4})]
    assert not at_once(claims, lambda pod: {"is_leader": False, "term": 4})
    assert not at_once(claims, lambda pod: None)  # the old elector already gone


def test_leading_again_in_a_new_term_is_not_leading_throughout():
    claims = [(OLD, {"is_leader": True, "term": 3}), (NEW, {"is_leader": True, "term": 4})]
    assert not at_once(claims, lambda pod: {"is_leader": True, "term": 5})


def test_only_pods_asked_before_a_later_claim_are_asked_again():
    asked = []
    claims = [(OLD, {"is_leader": True, "term": 3}), (NEW, {"is_leader": True, "term": 4})]
    at_once(claims, lambda pod: asked.append(pod["metadata"]["name"]))
    assert asked == ["old"]
