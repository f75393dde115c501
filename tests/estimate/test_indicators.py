"""Indicator outcomes and bases from the spec: routing, "weet niet", item non-response, the chain."""

from __future__ import annotations

import numpy as np
import pytest

from survey_pipeline import indicators as ind

NAN = np.nan


@pytest.fixture
def outcomes(spec, make_routed):
    def compute(indicator_id, rows):
        return ind.outcome(spec, spec.indicator(indicator_id), make_routed(spec, rows))

    return compute


def _same(actual, expected):
    np.testing.assert_array_equal(np.asarray(actual, dtype=float), np.asarray(expected, dtype=float))


def test_contact_of_all_residents_counts_routed_past_as_no(outcomes):
    rows = [
        {"heard": 1, "contact": 1},
        {"heard": 1, "contact": 2},
        {"heard": 2},  # never heard: routed past contact -> not success
        {"heard": 99},  # "weet niet" on the filter: routed past as well
        {"heard": 98},  # "geen antwoord" on the filter: status unknown
        {"heard": 1, "contact": 99},
        {"heard": 1, "contact": 98},
        {"heard": 1},  # in the group yet not asked: contradicts the routing
    ]
    result = outcomes("contact_of_residents", rows)
    _same(result.values, [1, 0, 0, 0, NAN, NAN, NAN, NAN])
    assert result.counts["routed_no"] == 1
    assert result.counts["routed_dont_know"] == 1
    assert result.counts["routed_unknown"] == 1
    assert result.counts["routing_inconsistent"] == 1
    assert result.counts["used"] == 4


@pytest.mark.parametrize(("rule", "unknown"), [("exclude", NAN), ("count_as_no", 0.0)])
def test_a_filter_left_unanswered_follows_the_indicators_filter_no_answer_rule(spec, make_routed, rule, unknown):
    """The spec states per indicator what "geen antwoord" or a blank on a filter does to the base;
    only those rows change (a "nee" or "weet niet" filter is "not success" under either rule)."""
    indicator = spec.indicator("contact_of_residents").model_copy(update={"filter_no_answer": rule})
    rows = [
        {"heard": 1, "contact": 1},
        {"heard": 2},
        {"heard": 99},
        {"heard": 98},
        {"heard": NAN},
        {"heard": 1, "contact": 98},
    ]
    result = ind.outcome(spec, indicator, make_routed(spec, rows))
    _same(result.values, [1, 0, 0, unknown, unknown, NAN])
    assert result.counts["routed_unknown"] == 2


def test_the_demo_spec_states_the_rule_of_every_indicator_and_both_rules_differ_on_the_demo(spec):
    """On a demo wave the two rules give different bases exactly by the rows whose filter is unknown."""
    from survey_pipeline import demo

    wave = demo.generate_panel(spec, n_per_wave=600, seed=3, faults=False).waves[2019]
    assert all(i.filter_no_answer == "exclude" for i in spec.indicators)  # the default, as documented
    contact = spec.indicator("contact_of_residents")
    excluded = ind.outcome(spec, contact, wave)
    counted = ind.outcome(spec, contact.model_copy(update={"filter_no_answer": "count_as_no"}), wave)
    unknown = excluded.counts["routed_unknown"]
    assert unknown > 0
    assert counted.counts["used"] == excluded.counts["used"] + unknown
    assert np.nansum(counted.values) == np.nansum(excluded.values)  # the added rows are all "no"


def test_helped_of_all_residents_follows_the_whole_chain(outcomes):
    rows = [
        {"heard": 2},
        {"heard": 1, "contact": 2},
        {"heard": 1, "contact": 99},
        {"heard": 98},
        {"heard": 1, "contact": 1, "helped": 1},
        {"heard": 1, "contact": 1, "helped": 2},
        {"heard": 1, "contact": 1, "helped": 98},
    ]
    _same(outcomes("helped_of_residents", rows).values, [0, 0, 0, NAN, 1, 0, NAN])


def test_dont_know_on_the_filter_is_routed_past_under_either_rule(outcomes):
    # familiar: success = goed/redelijk bekend, dont_know: count_as_no, base: residents
    rows = [
        {"heard": 2},
        {"heard": 99},
        {"heard": 98},
        {"heard": 1, "familiarity": 99},
        {"heard": 1, "familiarity": 98},
        {"heard": 1, "familiarity": 3},
        {"heard": 1, "familiarity": 2},
        {"heard": 1, "familiarity": 1},
    ]
    _same(outcomes("familiar", rows).values, [0, 0, NAN, 0, NAN, 0, 1, 1])


def test_subgroup_base_leaves_everyone_outside_the_group_out(outcomes):
    rows = [
        {"heard": 2},
        {"heard": 98},
        {"heard": 1, "contact": 1},
        {"heard": 1, "contact": 2},
        {"heard": 1, "contact": 99},
    ]
    result = outcomes("contact_of_heard", rows)
    _same(result.values, [NAN, NAN, 1, 0, NAN])
    assert result.counts["base"] == 3


def test_base_where_and_text_come_from_the_spec(spec):
    base = ind.indicator_base(spec, spec.indicator("helped_of_contact"))
    assert base.where == {"contact": [1]}
    assert base.text == "van de bewoners die in de afgelopen 12 maanden contact hebben gehad met WIJ Groningen"
    everyone = ind.indicator_base(spec, spec.indicator("helped_of_residents"))
    assert everyone.where is None
    assert everyone.text == "van alle bewoners (18 jaar e.o.)"
    assert ind.measured_in(spec, spec.indicator("caregiver_burdened")) == (2019, 2020)


def test_answer_categories_include_neutral_dont_know_and_no_answer(spec):
    categories = ind.answer_categories(spec.variables["walk_in"])
    labels = [label for _, label, _ in categories]
    assert labels == [
        "helemaal mee eens",
        "mee eens",
        "neutraal",
        "niet mee eens",
        "helemaal niet mee eens",
        "weet niet",
        "geen antwoord",
    ]
    assert [kind for *_, kind in categories][-2:] == ["dont_know", "no_answer"]
    assert categories[-1][0] == 98.0


def _share(y, w):
    used = ~np.isnan(y)
    return float(np.sum(w[used] * y[used]) / np.sum(w[used]))


def _chain(spec, frame, w):
    frame, _ = ind.add_outcomes(spec, frame)
    col = {i.id: frame[ind.outcome_column(i)].to_numpy() for i in spec.indicators}
    return {k: _share(v, w) for k, v in col.items()}


def test_unconditional_share_is_the_product_of_the_conditional_shares(spec, make_wave):
    # Without "weet niet" / "geen antwoord" in heard, contact and helped every
    # resident's status is determined, so the bases nest exactly: the base of
    # contact-of-heard is the numerator of heard, the base of helped-of-contact
    # the numerator of contact-of-heard. The weighted shares then telescope:
    #   sum(w*helped)/sum(w) = sum(w*heard)/sum(w) * sum(w*contact)/sum(w*heard)
    #                          * sum(w*helped)/sum(w*contact).
    rng = np.random.default_rng(20191)
    frame = make_wave(spec, 3000, 2019, rng, item_missing=0.0)
    w = rng.lognormal(0.0, 0.6, len(frame))
    s = _chain(spec, frame, w)
    assert s["contact_of_residents"] == pytest.approx(s["heard"] * s["contact_of_heard"], rel=1e-12)
    assert s["helped_of_residents"] == pytest.approx(
        s["heard"] * s["contact_of_heard"] * s["helped_of_contact"], rel=1e-12
    )
    assert 0.1 < s["helped_of_residents"] < s["contact_of_residents"] < s["heard"]


def test_chain_identity_is_not_automatic_when_dont_know_leaves_the_base(spec, make_wave):
    # The same data with "weet niet" on contact (excluded by contact_of_heard and
    # contact_of_residents): the bases no longer nest, so the identity above is
    # a property of the data, not of the code.
    rng = np.random.default_rng(20191)
    frame = make_wave(spec, 3000, 2019, rng, item_missing=0.0)
    w = rng.lognormal(0.0, 0.6, len(frame))
    heard = frame["heard"].to_numpy() == 1
    frame.loc[heard & (rng.random(len(frame)) < 0.2), "contact"] = 99.0
    frame.loc[frame["contact"] != 1, "helped"] = -1.0
    s = _chain(spec, frame, w)
    assert abs(s["contact_of_residents"] - s["heard"] * s["contact_of_heard"]) > 1e-3
