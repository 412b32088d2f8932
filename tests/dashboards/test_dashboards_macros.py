"""The macro expander reproduces the ClickHouse plugin's expansion (pkg/macros, CHDatasource.ts)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from streamtriage.dashboards.macros import (
    MacroError,
    QueryContext,
    Variable,
    apply_template_variables,
    expand_alert_sql,
    expand_macros,
    expand_panel_sql,
)

# The plugin docs' example range: 1415792726 .. 1447328726.
FROM = datetime.fromtimestamp(1415792726, timezone.utc)
TO = datetime.fromtimestamp(1447328726.5, timezone.utc)


def ctx(**variables: Variable) -> QueryContext:
    return QueryContext(FROM, TO, 20.0, variables)


def test_time_filter_expands_to_second_resolution_datetimes_like_the_plugin_docs() -> None:
    assert expand_macros("WHERE $__timeFilter(Timestamp)", ctx()) == (
        "WHERE Timestamp >= toDateTime(1415792726) AND Timestamp <= toDateTime(1447328726)")


def test_from_to_interval_and_ms_variants() -> None:
    sql = "$__fromTime $__toTime $__fromTime_ms $__toTime_ms $__interval_s $__timeInterval(ts)"
    assert expand_macros(sql, ctx()) == (
        "toDateTime(1415792726) toDateTime(1447328726) fromUnixTimestamp64Milli(1415792726000) "
        "fromUnixTimestamp64Milli(1447328726500) 20 toStartOfInterval(toDateTime(ts), INTERVAL 20 second)")


def test_interval_never_below_one_second() -> None:
    assert expand_macros("$__interval_s", QueryContext(FROM, TO, 0.2)) == "1"


def test_date_filter_and_nested_parentheses_in_arguments() -> None:
    assert expand_macros("$__dateFilter(toDate(ts))", ctx()) == (
        "toDate(ts) >= toDate('2014-11-12') AND toDate(ts) <= toDate('2015-11-12')")


def test_multi_value_variable_is_a_quoted_list_and_single_value_is_raw() -> None:
    c = ctx(service=Variable("service", ("a", "b"), multi=True), hang=Variable("hang", ("600",)))
    assert apply_template_variables("IN (${service}) AND x >= $hang", c) == "IN ('a','b') AND x >= 600"


def test_multi_value_with_one_selection_is_still_quoted() -> None:
    c = ctx(model=Variable("model", ("gpt-4.1",), multi=True))
    assert apply_template_variables("IN ($model)", c) == "IN ('gpt-4.1')"


def test_conditional_all_becomes_1_eq_1_when_all_is_selected() -> None:
    all_ = Variable("service", (), multi=True, include_all=True, all_selected=True)
    sql = "WHERE $__conditionalAll(ServiceName IN (${service}), $service) AND 1"
    assert expand_panel_sql(sql, ctx(service=all_)) == "WHERE 1=1 AND 1"


def test_conditional_all_keeps_the_condition_for_a_selection() -> None:
    one = Variable("service", ("checkout",), multi=True, include_all=True)
    sql = "WHERE $__conditionalAll(ServiceName IN (${service}), $service)"
    assert expand_panel_sql(sql, ctx(service=one)) == "WHERE ServiceName IN ('checkout')"


def test_formats_singlequote_and_csv() -> None:
    v = Variable("m", ("a", "b"), multi=True)
    assert apply_template_variables("${m:singlequote}|${m:csv}", ctx(m=v)) == "'a','b'|a,b"


def test_builtin_from_to_are_epoch_milliseconds() -> None:
    assert apply_template_variables("$__from-${__to}", ctx()) == "1415792726000-1447328726500"


@pytest.mark.parametrize("sql", ["$__bogus(x)", "$__timeFilter()", "$__timeFilter(a, b)", "$__timeFilter(x"])
def test_unknown_macro_or_wrong_arguments_raise(sql: str) -> None:
    with pytest.raises(MacroError):
        expand_macros(sql, ctx())


def test_unknown_dashboard_variable_raises() -> None:
    with pytest.raises(MacroError, match="unknown dashboard variable"):
        apply_template_variables("x = $nosuch", ctx())


def test_alert_sql_refuses_dashboard_variables_and_conditional_all() -> None:
    with pytest.raises(MacroError):
        expand_alert_sql("WHERE ServiceName IN (${service})", ctx())
    with pytest.raises(MacroError):
        expand_alert_sql("WHERE $__conditionalAll(a, $b)", ctx())
    assert expand_alert_sql("WHERE $__timeFilter(T)", ctx()).startswith("WHERE T >= toDateTime(")


def test_naive_or_reversed_time_range_is_rejected() -> None:
    with pytest.raises(MacroError):
        QueryContext(datetime(2026, 1, 1), datetime(2026, 1, 2))
    with pytest.raises(MacroError):
        QueryContext(TO, FROM)
