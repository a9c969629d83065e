"""Triggers and schedules at their extremes (found by fuzzing /v1/batchplane/createschedule
and createtrigger): a rate past float and a time zone name too long for a file answered
500; containerOverrides were taken unchecked, and refused at every firing."""

from __future__ import annotations

import pytest
from batchplane.domain import schedules, triggers
from batchplane.errors import ClientException


@pytest.mark.parametrize("expression", [
    "rate(" + "9" * 400 + " minutes)",  # float() of its seconds overflowed
    "rate(" + "9" * 5000 + " days)",  # int() refuses more than 4,300 digits
    "rate(36501 days)",
    "rate(52560001 minutes)",
])
def test_a_rate_past_100_years_is_a_client_exception(expression: str) -> None:
    with pytest.raises(ClientException, match=r"is a period of more than 100 years: use at most rate\(36500 days\)"):
        schedules.parse(expression)


@pytest.mark.parametrize("expression", ["rate(36500 days)", "rate(52560000 minutes)", "rate(0005 minutes)"])
def test_a_rate_up_to_100_years_is_taken(expression: str) -> None:
    rate = schedules.parse(expression)
    assert isinstance(rate, schedules.Rate)
    assert rate.next_after(1_700_000_000.0, 1_700_000_000.0) == 1_700_000_000 + rate.seconds


def test_a_time_zone_name_too_long_for_a_file_is_a_client_exception() -> None:
    # ZoneInfo looks the name up as a file: 5,000 characters are an OSError (ENAMETOOLONG).
    with pytest.raises(ClientException, match="is not a time zone") as e:
        schedules.time_zone("a" * 5000)
    assert len(e.value.message) < 300


@pytest.mark.parametrize(("overrides", "message"), [
    ({"vcpus": 10**309}, "containerOverrides.vcpus must be between 1 and 2147483647"),
    ({"resourceRequirements": [{"type": "VCPU", "value": "9" * 400}]}, "VCPU value must be at most 2147483647"),
    ({"command": [1]}, "containerOverrides.command must be a list of strings"),
    ({"environment": [{"name": "AWS_BATCH_X", "value": "1"}]}, "is reserved"),
])
@pytest.mark.parametrize("source", ["trigger", "schedule"])
def test_a_sources_container_overrides_are_checked_when_it_is_made(overrides: dict[str, object], message: str,
                                                                   source: str) -> None:
    """A trigger or schedule took any containerOverrides object, and each job it then
    submitted was refused (SubmitJob checks them): the mistake showed only at each firing."""
    job = {"jobQueue": "q", "jobDefinition": "jd", "containerOverrides": overrides}
    with pytest.raises(ClientException, match=message):
        if source == "trigger":
            triggers.new_trigger({"triggerName": "t", "bucket": "bucket", **job}, arn="arn:t", now=0)
        else:
            triggers.new_schedule({"scheduleName": "s", "scheduleExpression": "rate(5 minutes)", **job},
                                  arn="arn:s", now=0)
