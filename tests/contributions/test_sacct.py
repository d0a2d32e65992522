"""The SLURM accounting reader (``contributions.sacct``) against issue 4, "## Compute".

Pure unit tests: no database. Exports are built the way ``sacct`` prints them, e.g.

    sacct --allusers --parsable2 --starttime 2024-05-01 --endtime 2024-06-01 \\
          --format JobID,JobIDRaw,Cluster,Partition,Account,State,Submit,Start,End,\\
                   Elapsed,ElapsedRaw,AllocTRES,ReqTRES
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contributions.sacct import EXAMPLES_PER_REASON, SacctError, gpu_hours, read_export
from contributions.sacct_fields import count_tasks, gpus_by_type, parse_elapsed

FIELDS = [
    "JobID",
    "JobIDRaw",
    "Cluster",
    "Partition",
    "Account",
    "State",
    "Submit",
    "Start",
    "End",
    "Elapsed",
    "ElapsedRaw",
    "AllocTRES",
    "ReqTRES",
]

# What a one-node, 4-GPU job of two hours on LUMI-like hardware looks like.
DEFAULT = {
    "JobID": "4711",
    "JobIDRaw": "4711",
    "Cluster": "lumi",
    "Partition": "standard-g",
    "Account": "project_465000123",
    "State": "COMPLETED",
    "Submit": "2024-05-01T09:58:12",
    "Start": "2024-05-01T10:00:00",
    "End": "2024-05-01T12:00:00",
    "Elapsed": "02:00:00",
    "ElapsedRaw": "7200",
    "AllocTRES": "billing=64,cpu=64,gres/gpu=4,mem=240G,node=1",
    "ReqTRES": "billing=64,cpu=1,gres/gpu=4,mem=240G,node=1",
}
ACCOUNT = DEFAULT["Account"]


def job(**values: str) -> dict[str, str]:
    """One sacct row: the default job with some fields changed."""
    row = dict(DEFAULT)
    row.update(values)
    return row


def step(parent: dict[str, str], suffix: str, **values: str) -> dict[str, str]:
    """A step row of ``parent`` (``.batch``, ``.extern``, ``.0``): it repeats the AllocTRES."""
    row = dict(parent)
    row.update(
        JobID=parent["JobID"] + suffix,
        JobIDRaw=parent["JobIDRaw"] + suffix,
        Partition="",
        Account=parent["Account"],
        ReqTRES="",
    )
    row.update(values)
    return row


def export(
    rows: list[dict[str, str]],
    fields: list[str] = FIELDS,
    *,
    header: bool = True,
    parsable: bool = False,
    newline: str = "\n",
) -> bytes:
    """The bytes ``sacct --parsable2`` (or ``--parsable``: a trailing ``|``) would print."""
    end = "|" if parsable else ""
    lines = ["|".join(fields) + end] if header else []
    lines += ["|".join(row[name] for name in fields) + end for row in rows]
    return "".join(line + newline for line in lines).encode()


def totals(reading) -> dict[tuple[str, str], int]:
    """GPU-seconds per (account, accelerator type)."""
    return {key: agg.gpu_seconds for key, agg in reading.aggregates.items()}


def raises_at(line: int, words: str, data: bytes, **options) -> SacctError:
    with pytest.raises(SacctError) as caught:
        read_export(data, **options)
    error = caught.value
    assert error.line == line, str(error)
    assert words.lower() in str(error).lower(), str(error)
    assert str(error).startswith(f"line {line}: ")
    return error


# --- Formats: --parsable2, --parsable, --noheader ------------------------------------------


def test_a_parsable2_export_with_a_header_is_read():
    reading = read_export(export([job()]))
    assert reading.lines == 1
    assert reading.allocations == 1
    assert totals(reading) == {(ACCOUNT, "gpu"): 4 * 7200}
    agg = reading.aggregates[(ACCOUNT, "gpu")]
    assert agg.allocations == 1
    assert agg.gpu_hours == Decimal("8.000000")
    assert agg.first_start == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    assert agg.last_end == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert reading.left_out == []


def test_a_parsable_export_with_a_trailing_pipe_reads_the_same_as_parsable2():
    rows = [job(), step(job(), ".batch"), job(JobID="4712", JobIDRaw="4712", ElapsedRaw="60")]
    plain = read_export(export(rows))
    trailing = read_export(export(rows, parsable=True))
    assert totals(trailing) == totals(plain) == {(ACCOUNT, "gpu"): 4 * 7200 + 4 * 60}
    assert trailing.allocations == plain.allocations == 2
    assert trailing.steps == plain.steps == 1


def test_a_parsable_export_whose_last_field_is_empty_keeps_it():
    # ReqTRES is last and empty on step rows: "...|cpu=64,gres/gpu=4||" with --parsable.
    rows = [job(), step(job(), ".extern")]
    reading = read_export(export(rows, parsable=True))
    assert reading.steps == 1
    assert totals(reading) == {(ACCOUNT, "gpu"): 4 * 7200}


def test_a_headerless_export_is_read_with_the_fields_given_in_their_own_order():
    order = ["AllocTRES", "State", "End", "Start", "ElapsedRaw", "Account", "JobIDRaw", "JobID"]
    rows = [
        job(),
        step(job(), ".batch"),
        job(JobID="4712", JobIDRaw="4712", AllocTRES="gres/gpu=2", ElapsedRaw="1800"),
    ]
    reading = read_export(export(rows, order, header=False), fields=order)
    assert reading.lines == 3
    assert reading.steps == 1
    assert totals(reading) == {(ACCOUNT, "gpu"): 4 * 7200 + 2 * 1800}


def test_a_headerless_parsable_export_is_read_with_the_fields_given():
    order = ["JobID", "Account", "State", "Start", "End", "Elapsed", "AllocTRES"]
    data = export([job(Elapsed="00:30:00")], order, header=False, parsable=True)
    assert totals(read_export(data, fields=order)) == {(ACCOUNT, "gpu"): 4 * 1800}


@pytest.mark.parametrize("parsable", [False, True])
def test_a_header_repeated_as_the_first_line_when_fields_are_given_is_skipped(parsable):
    rows = [job(), job(JobID="4712", JobIDRaw="4712")]
    reading = read_export(export(rows, parsable=parsable), fields=FIELDS)
    assert reading.lines == 2
    assert reading.allocations == 2
    assert totals(reading) == {(ACCOUNT, "gpu"): 2 * 4 * 7200}


def test_a_header_in_another_order_than_the_fields_given_is_used_as_the_header():
    # The export's own header says how its columns are ordered: it wins over the list.
    order = list(reversed(FIELDS))
    assert totals(read_export(export([job()]), fields=order)) == totals(
        read_export(export([job()]))
    )


def test_malformed_fields_of_a_step_or_a_job_still_running_are_refused_too():
    step = export([job(), job(JobID="4711.batch", AllocTRES="gres/gpu=x")])
    raises_at(3, "AllocTRES item 'gres/gpu=x'", step)
    running = export([job(), job(JobID="4713", JobIDRaw="4713", State="RUNNING", Start="soon")])
    raises_at(3, "Start 'soon'", running)


def test_blank_lines_and_crlf_line_endings_are_tolerated():
    data = export([job(), job(JobID="4712", JobIDRaw="4712")], newline="\r\n") + b"\r\n\r\n"
    reading = read_export(data)
    assert reading.lines == 2
    assert totals(reading) == {(ACCOUNT, "gpu"): 2 * 4 * 7200}


def test_a_job_name_holding_a_unicode_line_separator_does_not_split_its_row():
    fields = [*FIELDS, "JobName"]
    rows = [
        job(JobName="train\u2028llm"),
        job(JobID="4712", JobIDRaw="4712", JobName="page\x0cbreak"),
        job(JobID="4713", JobIDRaw="4713", JobName="nel\x85here"),
    ]
    reading = read_export(export(rows, fields))
    assert reading.lines == 3
    assert reading.allocations == 3


def test_the_column_count_of_an_empty_export_with_fields_is_nothing_read():
    reading = read_export(b"", fields=FIELDS)
    assert reading.lines == 0
    assert reading.aggregates == {}
    assert reading.gpu_seconds == 0


# --- Counting each allocation once -----------------------------------------------------------


@pytest.mark.parametrize(
    ("jobid", "suffix"),
    [
        ("123", ".batch"),
        ("123", ".extern"),
        ("123", ".0"),
        ("123", ".12"),
        ("123_4", ".batch"),
        ("123_4", ".0"),
        ("123+1", ".0"),
        ("123+0", ".batch"),
    ],
)
def test_a_step_row_does_not_add_to_its_job(jobid, suffix):
    parent = job(JobID=jobid, JobIDRaw="123")
    alone = read_export(export([parent]))
    with_step = read_export(export([parent, step(parent, suffix)]))
    assert with_step.steps == 1
    assert with_step.allocations == alone.allocations == 1
    assert totals(with_step) == totals(alone) == {(ACCOUNT, "gpu"): 4 * 7200}


def test_step_rows_without_their_job_add_nothing():
    parent = job()
    rows = [step(parent, ".batch"), step(parent, ".extern"), step(parent, ".0")]
    reading = read_export(export(rows))
    assert reading.steps == 3
    assert reading.allocations == 0
    assert reading.aggregates == {}


def test_steps_that_come_before_their_job_do_not_add_either():
    parent = job()
    rows = [step(parent, ".0"), step(parent, ".batch"), parent, step(parent, ".extern")]
    assert totals(read_export(export(rows))) == {(ACCOUNT, "gpu"): 4 * 7200}


def test_each_array_task_counts_as_an_allocation():
    rows = [
        job(JobID="123_4", JobIDRaw="127"),
        step(job(JobID="123_4", JobIDRaw="127"), ".batch"),
        job(JobID="123_5", JobIDRaw="128", ElapsedRaw="600"),
    ]
    reading = read_export(export(rows))
    assert reading.allocations == 2
    assert reading.aggregates[(ACCOUNT, "gpu")].allocations == 2
    assert totals(reading) == {(ACCOUNT, "gpu"): 4 * 7200 + 4 * 600}


def test_a_bracketed_array_record_counts_as_each_task_it_names():
    reading = read_export(export([job(JobID="123_[1-3,7]", JobIDRaw="123")]))
    assert reading.allocations == 4
    assert reading.aggregates[(ACCOUNT, "gpu")].allocations == 4
    assert totals(reading) == {(ACCOUNT, "gpu"): 4 * (4 * 7200)}
    assert reading.aggregates[(ACCOUNT, "gpu")].gpu_hours == Decimal("32.000000")


def test_the_throttle_of_a_bracketed_array_record_is_not_a_task_count():
    reading = read_export(export([job(JobID="123_[0-15%4]", JobIDRaw="123")]))
    assert reading.allocations == 16
    assert totals(reading) == {(ACCOUNT, "gpu"): 16 * 4 * 7200}


@pytest.mark.parametrize(
    ("spec", "tasks"),
    [("7", 1), ("1-3,7", 4), ("0-15%4", 16), ("0-99%10", 100), ("1,3,5", 3), ("2-2", 1)],
)
def test_array_task_lists_are_counted(spec, tasks):
    assert count_tasks(spec) == tasks


@pytest.mark.parametrize("spec", ["5-3", "1,,2", ",1"])
def test_array_task_lists_that_make_no_sense_are_refused(spec):
    with pytest.raises(ValueError):
        count_tasks(spec)


def test_a_backwards_array_range_in_an_export_is_an_error_on_its_line():
    rows = [job(), job(JobID="123_[7-3]", JobIDRaw="123")]
    raises_at(3, "backwards", export(rows))


def test_each_heterogeneous_component_counts_as_an_allocation():
    rows = [
        job(JobID="123+0", JobIDRaw="123", AllocTRES="cpu=8,gres/gpu=1,node=1"),
        step(job(JobID="123+0", JobIDRaw="123"), ".batch"),
        job(JobID="123+1", JobIDRaw="124", AllocTRES="cpu=64,gres/gpu=8,node=2"),
        step(job(JobID="123+1", JobIDRaw="124"), ".0"),
    ]
    reading = read_export(export(rows))
    assert reading.allocations == 2
    assert reading.steps == 2
    assert totals(reading) == {(ACCOUNT, "gpu"): (1 + 8) * 7200}


def test_heterogeneous_components_are_told_apart_by_job_id_alone():
    fields = ["JobID", "Account", "State", "Start", "End", "ElapsedRaw", "AllocTRES"]
    rows = [job(JobID="123+0"), job(JobID="123+1")]
    reading = read_export(export(rows, fields))
    assert reading.allocations == 2
    assert reading.duplicates == 0


def test_the_same_allocation_appearing_twice_is_counted_once():
    rows = [job(), step(job(), ".batch"), job(), step(job(), ".batch")]
    reading = read_export(export(rows))
    assert reading.allocations == 1
    assert reading.duplicates == 1
    assert totals(reading) == {(ACCOUNT, "gpu"): 4 * 7200}


def test_the_same_job_id_submitted_again_after_a_reset_is_a_second_allocation():
    rows = [job(), job(Submit="2024-05-20T08:00:00", Start="2024-05-20T08:00:05")]
    reading = read_export(export(rows))
    assert reading.allocations == 2
    assert reading.duplicates == 0
    assert totals(reading) == {(ACCOUNT, "gpu"): 2 * 4 * 7200}


def test_the_same_job_id_on_another_cluster_is_a_second_allocation():
    rows = [job(), job(Cluster="mahti")]
    reading = read_export(export(rows))
    assert reading.allocations == 2
    assert totals(reading) == {(ACCOUNT, "gpu"): 2 * 4 * 7200}


def test_without_cluster_and_submit_columns_the_raw_job_id_alone_identifies_an_allocation():
    fields = ["JobID", "JobIDRaw", "Account", "State", "Start", "End", "ElapsedRaw", "AllocTRES"]
    rows = [job(), job(), job(JobID="4712", JobIDRaw="4712")]
    reading = read_export(export(rows, fields), cluster="lumi")
    assert reading.allocations == 2
    assert reading.duplicates == 1


def test_array_tasks_with_the_same_job_id_are_told_apart_by_their_raw_id():
    # JobID 123_4 and 123_5 are different allocations; repeated, each is counted once.
    rows = [
        job(JobID="123_4", JobIDRaw="127"),
        job(JobID="123_5", JobIDRaw="128"),
        job(JobID="123_4", JobIDRaw="127"),
    ]
    reading = read_export(export(rows))
    assert reading.allocations == 2
    assert reading.duplicates == 1


# --- GPUs from AllocTRES ---------------------------------------------------------------------


def test_typed_entries_beside_the_untyped_total_are_not_added_to_it():
    tres = "billing=128,cpu=128,gres/gpu=8,gres/gpu:h100=8,mem=1T,node=2"
    reading = read_export(export([job(AllocTRES=tres)]))
    assert totals(reading) == {(ACCOUNT, "h100"): 8 * 7200}


def test_typed_entries_are_summed_when_there_is_no_untyped_total():
    tres = "cpu=32,gres/gpu:a100=2,gres/gpu:h100=1,node=1"
    reading = read_export(export([job(AllocTRES=tres)]))
    assert totals(reading) == {(ACCOUNT, "a100"): 2 * 7200, (ACCOUNT, "h100"): 1 * 7200}
    assert reading.gpu_seconds == 3 * 7200


def test_mig_slices_are_their_own_accelerator_type():
    tres = "cpu=8,gres/gpu=2,gres/gpu:a100_3g.20gb=2,mem=64G,node=1"
    reading = read_export(export([job(AllocTRES=tres)]))
    assert totals(reading) == {(ACCOUNT, "a100_3g.20gb"): 2 * 7200}


def test_a_lone_mig_slice_counts_as_one_gpu():
    reading = read_export(export([job(AllocTRES="cpu=4,gres/gpu:a100_1g.5gb=1,node=1")]))
    assert totals(reading) == {(ACCOUNT, "a100_1g.5gb"): 7200}


def test_gpu_memory_and_utilisation_are_not_gpus():
    tres = "cpu=16,gres/gpu=2,gres/gpumem=160G,gres/gpuutil=95,mem=64G,node=1"
    reading = read_export(export([job(AllocTRES=tres)]))
    assert totals(reading) == {(ACCOUNT, "gpu"): 2 * 7200}


def test_a_job_with_gpu_memory_but_no_gpu_is_left_out_as_having_no_gpus():
    rows = [job(AllocTRES="cpu=16,gres/gpumem=80G,mem=64G,node=1")]
    reading = read_export(export(rows))
    assert reading.aggregates == {}
    assert reading.allocations == 0
    assert reading.left_out_counts == {"no GPUs allocated": 1}
    assert (reading.left_out[0].line, reading.left_out[0].job) == (2, "4711")


def test_a_cpu_only_job_is_left_out_as_having_no_gpus():
    reading = read_export(export([job(AllocTRES="billing=128,cpu=128,mem=200G,node=1")]))
    assert reading.aggregates == {}
    assert reading.left_out_counts == {"no GPUs allocated": 1}


def test_untyped_gpus_take_the_type_declared_for_their_partition():
    rows = [
        job(Partition="gpu-h100"),
        job(JobID="4712", JobIDRaw="4712", Partition="gpu-a100"),
        job(JobID="4713", JobIDRaw="4713", Partition="small-g"),
    ]
    reading = read_export(
        export(rows),
        partitions={"gpu-h100": "h100", "gpu-a100": "a100"},
        default_accelerator="mi250x",
    )
    assert totals(reading) == {
        (ACCOUNT, "h100"): 4 * 7200,
        (ACCOUNT, "a100"): 4 * 7200,
        (ACCOUNT, "mi250x"): 4 * 7200,
    }


def test_untyped_gpus_take_the_default_type_without_a_partition_column():
    fields = ["JobID", "Account", "State", "Start", "End", "ElapsedRaw", "AllocTRES"]
    reading = read_export(
        export([job()], fields), partitions={"standard-g": "mi250x"}, default_accelerator="v100"
    )
    assert totals(reading) == {(ACCOUNT, "v100"): 4 * 7200}


def test_typed_gpus_keep_their_type_whatever_the_partition_declares():
    tres = "gres/gpu=2,gres/gpu:h100=2"
    reading = read_export(export([job(AllocTRES=tres)]), partitions={"standard-g": "a100"})
    assert totals(reading) == {(ACCOUNT, "h100"): 2 * 7200}


def test_gpus_the_typed_entries_do_not_account_for_take_the_partition_type():
    tres = "cpu=64,gres/gpu=4,gres/gpu:h100=1,node=1"
    reading = read_export(export([job(AllocTRES=tres)]), partitions={"standard-g": "a100"})
    assert totals(reading) == {(ACCOUNT, "h100"): 1 * 7200, (ACCOUNT, "a100"): 3 * 7200}
    assert reading.gpu_seconds == 4 * 7200
    # The allocation is one, though it appears under two accelerator types.
    assert reading.allocations == 1


def test_typed_entries_beyond_the_untyped_total_are_not_counted():
    tres = "gres/gpu=2,gres/gpu:h100=2,gres/gpu:h100_1g.10gb=1"
    reading = read_export(export([job(AllocTRES=tres)]))
    assert reading.gpu_seconds == 2 * 7200


def test_req_tres_is_not_what_was_allocated():
    rows = [
        job(AllocTRES="cpu=16,gres/gpu=2,node=1", ReqTRES="cpu=16,gres/gpu:h100=8,node=1"),
        job(
            JobID="4712",
            JobIDRaw="4712",
            AllocTRES="cpu=16,mem=10G,node=1",
            ReqTRES="cpu=16,gres/gpu=4,node=1",
        ),
    ]
    reading = read_export(export(rows))
    assert totals(reading) == {(ACCOUNT, "gpu"): 2 * 7200}
    assert reading.left_out_counts == {"no GPUs allocated": 1}


@pytest.mark.parametrize(
    ("tres", "expected"),
    [
        ("", (None, {})),
        ("cpu=4,mem=8G,node=1", (None, {})),
        ("gres/gpu=4", (4, {})),
        ("gres/gpu=4,gres/gpu:h100=4", (4, {"h100": 4})),
        ("gres/gpu:a100=1,gres/gpu:a100_3g.20gb=2", (None, {"a100": 1, "a100_3g.20gb": 2})),
        ("gres/gpu=1,gres/gpumem=40G,gres/gpuutil=100", (1, {})),
        ("gres/gpu=0", (0, {})),
    ],
)
def test_gpus_are_read_from_alloc_tres(tres, expected):
    assert gpus_by_type(tres) == expected


# --- Elapsed and GPU-hours -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("00:00:00", 0),
        ("00:20:00", 1200),
        ("02:03:04", 7384),
        ("1-02:03:04", 93784),
        ("14-00:00:00", 14 * 86400),
        ("20:00", 1200),
        ("05:07", 307),
        ("48:00:00", 48 * 3600),
    ],
)
def test_elapsed_is_read_as_d_hh_mm_ss(text, seconds):
    assert parse_elapsed(text) == seconds


@pytest.mark.parametrize("text", ["2 hours", "01:60:00", "00:00:60", "1-", "", "12", "a-01:00:00"])
def test_elapsed_that_is_not_d_hh_mm_ss_is_refused(text):
    with pytest.raises(ValueError):
        parse_elapsed(text)


def test_elapsed_with_days_is_read_in_an_export_without_elapsed_raw():
    fields = [f for f in FIELDS if f != "ElapsedRaw"]
    reading = read_export(export([job(Elapsed="1-00:30:00")], fields))
    assert totals(reading) == {(ACCOUNT, "gpu"): 4 * (86400 + 1800)}


def test_elapsed_as_minutes_and_seconds_is_read():
    fields = [f for f in FIELDS if f != "ElapsedRaw"]
    reading = read_export(export([job(Elapsed="45:00")], fields))
    assert totals(reading) == {(ACCOUNT, "gpu"): 4 * 2700}


def test_elapsed_raw_is_preferred_to_elapsed_when_present():
    reading = read_export(export([job(Elapsed="01:00:00", ElapsedRaw="7200")]))
    assert totals(reading) == {(ACCOUNT, "gpu"): 4 * 7200}


def test_an_empty_elapsed_raw_falls_back_to_elapsed():
    reading = read_export(export([job(Elapsed="00:10:00", ElapsedRaw="")]))
    assert totals(reading) == {(ACCOUNT, "gpu"): 4 * 600}


def test_gpu_hours_are_exact():
    # 3 GPUs for 20 minutes are one GPU-hour, not 0.999999.
    rows = [job(AllocTRES="gres/gpu=3", Elapsed="00:20:00", ElapsedRaw="1200")]
    agg = read_export(export(rows)).aggregates[(ACCOUNT, "gpu")]
    assert agg.gpu_seconds == 3600
    assert agg.gpu_hours == Decimal("1.000000")
    assert str(agg.gpu_hours) == "1.000000"


def test_gpu_hours_are_summed_in_gpu_seconds_and_rounded_once():
    # Three one-second jobs on one GPU: 3 GPU-seconds = 0.000833 GPU-hours; rounding each
    # job first (0.000278 each) would give 0.000834.
    rows = [
        job(JobID=str(n), JobIDRaw=str(n), AllocTRES="gres/gpu=1", ElapsedRaw="1")
        for n in (1, 2, 3)
    ]
    agg = read_export(export(rows)).aggregates[(ACCOUNT, "gpu")]
    assert agg.gpu_seconds == 3
    assert agg.gpu_hours == Decimal("0.000833")
    assert 3 * gpu_hours(1) == Decimal("0.000834")


@pytest.mark.parametrize(
    ("seconds", "hours"),
    [(0, "0.000000"), (3600, "1.000000"), (1, "0.000278"), (5400, "1.500000"), (18, "0.005000")],
)
def test_gpu_seconds_are_shown_as_hours_to_the_millionth(seconds, hours):
    assert gpu_hours(seconds) == Decimal(hours)


def test_accounts_are_kept_apart():
    rows = [job(), job(JobID="4712", JobIDRaw="4712", Account="project_465000456")]
    reading = read_export(export(rows))
    assert totals(reading) == {
        (ACCOUNT, "gpu"): 4 * 7200,
        ("project_465000456", "gpu"): 4 * 7200,
    }


def test_a_job_without_an_account_is_left_out():
    reading = read_export(export([job(Account="")]))
    assert reading.aggregates == {}
    assert reading.left_out_counts == {"no account": 1}


# --- States ----------------------------------------------------------------------------------


def test_a_job_cancelled_by_a_user_after_it_ran_is_counted():
    reading = read_export(export([job(State="CANCELLED by 1234")]))
    assert reading.allocations == 1
    assert totals(reading) == {(ACCOUNT, "gpu"): 4 * 7200}


@pytest.mark.parametrize(
    "state",
    [
        "COMPLETED",
        "FAILED",
        "CANCELLED",
        "CANCELLED by 0",
        "TIMEOUT",
        "NODE_FAIL",
        "PREEMPTED",
        "OUT_OF_MEMORY",
        "DEADLINE",
    ],
)
def test_a_finished_job_is_counted(state):
    reading = read_export(export([job(State=state)]))
    assert reading.allocations == 1
    assert reading.left_out == []


@pytest.mark.parametrize("state", ["PENDING", "RUNNING", "SUSPENDED", "RESIZING"])
def test_a_job_not_finished_is_left_out_and_reported_with_its_line(state):
    rows = [job(), job(JobID="4712", JobIDRaw="4712", State=state, End="Unknown")]
    reading = read_export(export(rows))
    assert reading.allocations == 1
    assert totals(reading) == {(ACCOUNT, "gpu"): 4 * 7200}
    [left] = reading.left_out
    assert (left.line, left.job, left.reason) == (3, "4712", f"not finished ({state})")
    assert reading.left_out_counts == {f"not finished ({state})": 1}


def test_a_pending_job_is_left_out_even_with_zero_elapsed_and_unknown_start():
    rows = [
        job(
            JobID="123_[1-3,7]",
            JobIDRaw="123",
            State="PENDING",
            Start="Unknown",
            End="Unknown",
            Elapsed="00:00:00",
            ElapsedRaw="0",
            AllocTRES="",
        )
    ]
    reading = read_export(export(rows))
    assert reading.allocations == 0
    assert reading.left_out_counts == {"not finished (PENDING)": 1}
    assert reading.left_out[0].job == "123_[1-3,7]"


def test_left_out_counts_are_complete_beyond_the_examples_kept():
    extra = 7
    running = [
        job(JobID=str(5000 + n), JobIDRaw=str(5000 + n), State="RUNNING", End="Unknown")
        for n in range(EXAMPLES_PER_REASON + extra)
    ]
    pending = [job(JobID="6000", JobIDRaw="6000", State="PENDING", Start="Unknown")]
    reading = read_export(export([job(), *running, *pending]))
    assert reading.left_out_counts["not finished (RUNNING)"] == EXAMPLES_PER_REASON + extra
    assert reading.left_out_counts["not finished (PENDING)"] == 1
    examples = [x for x in reading.left_out if x.reason == "not finished (RUNNING)"]
    assert len(examples) == EXAMPLES_PER_REASON
    # The examples are the first ones, on their own lines (header 1, counted job 2).
    assert [x.line for x in examples] == list(range(3, 3 + EXAMPLES_PER_REASON))
    assert [x.job for x in examples][:2] == ["5000", "5001"]
    [pend] = [x for x in reading.left_out if x.reason == "not finished (PENDING)"]
    assert pend.line == 3 + EXAMPLES_PER_REASON + extra
    assert reading.allocations == 1


def test_end_unknown_is_decided_by_state():
    rows = [
        job(JobID="4711", JobIDRaw="4711", State="RUNNING", End="Unknown"),
        job(JobID="4712", JobIDRaw="4712", State="COMPLETED", End="Unknown"),
    ]
    reading = read_export(export(rows))
    assert reading.allocations == 1
    assert totals(reading) == {(ACCOUNT, "gpu"): 4 * 7200}
    assert [(x.job, x.reason) for x in reading.left_out] == [("4711", "not finished (RUNNING)")]


def test_a_finished_job_with_no_recorded_end_ends_after_its_elapsed_time():
    reading = read_export(export([job(End="Unknown")]))
    agg = reading.aggregates[(ACCOUNT, "gpu")]
    assert agg.first_start == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    assert agg.last_end == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def test_a_job_cancelled_before_it_started_is_left_out():
    rows = [
        job(),
        job(
            JobID="4712",
            JobIDRaw="4712",
            State="CANCELLED by 1234",
            Start="Unknown",
            End="2024-05-01T11:00:00",
            Elapsed="00:00:00",
            ElapsedRaw="0",
        ),
    ]
    reading = read_export(export(rows))
    assert reading.allocations == 1
    assert totals(reading) == {(ACCOUNT, "gpu"): 4 * 7200}
    [left] = reading.left_out
    assert (left.line, left.job, left.reason) == (3, "4712", "never started")


def test_an_empty_state_is_an_error_on_its_line():
    raises_at(3, "State", export([job(), job(JobID="4712", JobIDRaw="4712", State="")]))


# --- Time zones ------------------------------------------------------------------------------


def test_times_are_read_in_utc_by_default():
    agg = read_export(export([job()])).aggregates[(ACCOUNT, "gpu")]
    assert agg.first_start == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    assert agg.first_start.utcoffset() == timedelta(0)


def test_naive_times_are_read_in_the_facility_zone_and_kept_in_utc():
    # Helsinki in winter is UTC+2, in summer UTC+3.
    rows = [
        job(Start="2024-01-15T08:00:00", End="2024-01-15T10:00:00"),
        job(
            JobID="4712",
            JobIDRaw="4712",
            Start="2024-07-01T09:00:00",
            End="2024-07-01T11:00:00",
        ),
    ]
    agg = read_export(export(rows), tz="Europe/Helsinki").aggregates[(ACCOUNT, "gpu")]
    assert agg.first_start == datetime(2024, 1, 15, 6, 0, tzinfo=UTC)
    assert agg.last_end == datetime(2024, 7, 1, 8, 0, tzinfo=UTC)
    assert agg.first_start.tzinfo == UTC
    assert agg.last_end.tzinfo == UTC


def test_a_job_across_the_spring_dst_change_is_placed_in_utc_on_both_sides():
    # 2024-03-31 in Helsinki: clocks go 03:00 -> 04:00. 02:30 is UTC+2, 04:30 is UTC+3,
    # so the job ran one hour (as Elapsed says), not two.
    rows = [job(Start="2024-03-31T02:30:00", End="2024-03-31T04:30:00", ElapsedRaw="3600")]
    agg = read_export(export(rows), tz="Europe/Helsinki").aggregates[(ACCOUNT, "gpu")]
    assert agg.first_start == datetime(2024, 3, 31, 0, 30, tzinfo=UTC)
    assert agg.last_end == datetime(2024, 3, 31, 1, 30, tzinfo=UTC)
    assert agg.last_end - agg.first_start == timedelta(seconds=3600)


def test_a_job_across_the_autumn_dst_change_is_placed_in_utc_on_both_sides():
    # 2024-10-27 in Helsinki: clocks go 04:00 -> 03:00. 01:00 is UTC+3, 05:00 is UTC+2.
    rows = [job(Start="2024-10-27T01:00:00", End="2024-10-27T05:00:00", ElapsedRaw="18000")]
    agg = read_export(export(rows), tz="Europe/Helsinki").aggregates[(ACCOUNT, "gpu")]
    assert agg.first_start == datetime(2024, 10, 26, 22, 0, tzinfo=UTC)
    assert agg.last_end == datetime(2024, 10, 27, 3, 0, tzinfo=UTC)


def test_first_start_and_last_end_span_all_counted_jobs_whatever_their_order():
    rows = [
        job(JobID="2", JobIDRaw="2", Start="2024-05-03T00:00:00", End="2024-05-03T01:00:00"),
        job(JobID="1", JobIDRaw="1", Start="2024-05-01T00:00:00", End="2024-05-09T00:00:00"),
        job(JobID="3", JobIDRaw="3", Start="2024-05-05T00:00:00", End="2024-05-06T00:00:00"),
        # Left out jobs do not stretch the period.
        job(JobID="4", JobIDRaw="4", State="RUNNING", Start="2024-04-01T00:00:00"),
    ]
    agg = read_export(export(rows)).aggregates[(ACCOUNT, "gpu")]
    assert agg.first_start == datetime(2024, 5, 1, tzinfo=UTC)
    assert agg.last_end == datetime(2024, 5, 9, tzinfo=UTC)


# --- Malformed input -------------------------------------------------------------------------


def test_a_row_with_too_few_fields_is_an_error_on_its_line():
    good = export([job(), job(JobID="4712", JobIDRaw="4712")])
    data = good + b"4713|4713|lumi|standard-g\n"
    error = raises_at(4, "expected 13 fields, found 4", data)
    assert isinstance(error, ValueError)


def test_a_row_with_a_pipe_too_many_is_an_error_on_its_line():
    data = export([job()]) + export([job(JobID="4712|x")], header=False)
    raises_at(3, "expected 13 fields, found 14", data)


def test_a_parsable2_row_with_a_trailing_pipe_and_a_non_empty_last_field_is_an_error():
    data = (
        export([job()]) + export([job(JobID="4712", JobIDRaw="4712")], header=False)[:-1] + b"|x\n"
    )
    raises_at(3, "fields", data)


def test_a_bad_job_id_is_an_error_on_its_line():
    data = export(
        [job(), job(JobID="4712", JobIDRaw="4712"), job(JobID="job-4713", JobIDRaw="4713")]
    )
    raises_at(4, "JobID 'job-4713'", data)


def test_a_bad_elapsed_is_an_error_on_its_line():
    fields = [f for f in FIELDS if f != "ElapsedRaw"]
    data = export([job(), job(JobID="4712", JobIDRaw="4712", Elapsed="2h")], fields)
    raises_at(3, "Elapsed '2h'", data)


def test_a_bad_elapsed_raw_is_an_error_on_its_line():
    data = export([job(), job(JobID="4712", JobIDRaw="4712", ElapsedRaw="-5")])
    raises_at(3, "ElapsedRaw '-5'", data)


@pytest.mark.parametrize("tres", ["gres/gpu=two", "gres/gpu=-1", "gres/gpu=", "gres/gpu:h100=1.5"])
def test_a_bad_alloc_tres_count_is_an_error_on_its_line(tres):
    data = export([job(), job(JobID="4712", JobIDRaw="4712", AllocTRES=f"cpu=8,{tres},node=1")])
    raises_at(3, "AllocTRES", data)


def test_an_alloc_tres_gpu_entry_without_a_value_is_an_error_on_its_line():
    raises_at(2, "AllocTRES", export([job(AllocTRES="cpu=8,gres/gpu,node=1")]))


def test_an_alloc_tres_gpu_entry_without_a_type_name_is_an_error_on_its_line():
    raises_at(2, "names no GPU type", export([job(AllocTRES="gres/gpu:=1")]))


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("Start", "2024-13-01T00:00:00"),
        ("Start", "yesterday"),
        ("End", "2024-05-01T25:00:00"),
        ("End", "01/05/2024 12:00"),
    ],
)
def test_a_bad_time_is_an_error_on_its_line_naming_the_column(column, value):
    data = export([job(), job(JobID="4712", JobIDRaw="4712", **{column: value})])
    raises_at(3, f"{column} {value!r} is not a time", data)


def test_non_utf8_bytes_are_an_error_on_their_line():
    # An account name written in Latin-1 on the third job (line 4).
    data = export([job(), job(JobID="4712", JobIDRaw="4712")]) + "4713|4713|lumi|g|åbo".encode(
        "latin-1"
    )
    raises_at(4, "UTF-8", data)
    # On the first job (line 2), with good lines after it.
    bad = export([job(Account="proj\u00e9t")]).replace("é".encode(), b"\xe9")
    raises_at(2, "UTF-8", bad + export([job(JobID="4712", JobIDRaw="4712")], header=False))


def test_a_header_missing_a_required_field_is_an_error_on_line_one_naming_it():
    for missing, named in [
        ("AllocTRES", "AllocTRES"),
        ("Account", "Account"),
        ("State", "State"),
        ("Start", "Start"),
        ("End", "End"),
    ]:
        fields = [f for f in FIELDS if f != missing]
        raises_at(1, f"lacks {named}", export([job()], fields))


def test_a_header_needs_a_job_id_of_either_kind_and_an_elapsed_of_either_kind():
    no_ids = [f for f in FIELDS if f not in ("JobID", "JobIDRaw")]
    raises_at(1, "lacks JobID or JobIDRaw", export([job()], no_ids))
    no_elapsed = [f for f in FIELDS if f not in ("Elapsed", "ElapsedRaw")]
    raises_at(1, "lacks Elapsed or ElapsedRaw", export([job()], no_elapsed))
    # Either one of each is enough.
    only_raw = [f for f in FIELDS if f not in ("JobID", "Elapsed")]
    assert read_export(export([job()], only_raw)).allocations == 1


def test_fields_given_without_a_required_one_are_an_error():
    fields = [f for f in FIELDS if f != "AllocTRES"]
    raises_at(1, "lacks AllocTRES", export([job()], fields, header=False), fields=fields)


def test_a_headerless_export_without_the_field_list_is_an_error_asking_for_it():
    raises_at(1, "no header", export([job(), job(JobID="4712", JobIDRaw="4712")], header=False))


def test_an_empty_export_without_the_field_list_is_an_error_asking_for_it():
    raises_at(1, "no header", b"")
    raises_at(1, "no header", b"\n\n")


def test_the_first_malformed_line_is_the_one_reported():
    rows = [job(), job(JobID="bad"), job(JobID="4713", ElapsedRaw="x")]
    raises_at(3, "JobID 'bad'", export(rows))


# --- The export's hash -----------------------------------------------------------------------


def test_the_export_hash_is_the_sha256_of_its_exact_bytes():
    data = export([job(), step(job(), ".batch")])
    assert read_export(data).sha256 == hashlib.sha256(data).hexdigest()
    crlf = export([job(), step(job(), ".batch")], newline="\r\n")
    reading = read_export(crlf)
    assert reading.sha256 == hashlib.sha256(crlf).hexdigest()
    # Same jobs, other bytes: another export.
    assert reading.sha256 != read_export(data).sha256
    assert totals(reading) == totals(read_export(data))


def test_the_hash_of_an_export_with_a_trailing_newline_differs_from_one_without():
    data = export([job()])
    assert read_export(data).sha256 != read_export(data.rstrip(b"\n")).sha256


# --- Property: every distinct allocation once, in any order ----------------------------------

_STEP_SUFFIXES = [".batch", ".extern", ".0", ".1", ".17"]


@st.composite
def allocations(draw):
    """Distinct allocations (cluster, raw id, submit), each with the rows sacct prints."""
    n = draw(st.integers(min_value=0, max_value=25))
    identities = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["lumi", "mahti"]),
                st.integers(min_value=1, max_value=40),
                st.sampled_from(["2024-05-01T08:00:00", "2024-05-20T08:00:00"]),
            ),
            min_size=n,
            max_size=n,
            unique=True,
        )
    )
    jobs = []
    for cluster, raw, submit in identities:
        kind = draw(st.sampled_from(["plain", "task", "het", "bracket"]))
        if kind == "plain":
            jobid, tasks = str(raw), 1
        elif kind == "task":
            jobid, tasks = f"{raw + 1000}_{draw(st.integers(0, 99))}", 1
        elif kind == "het":
            jobid, tasks = f"{raw}+{draw(st.integers(0, 3))}", 1
        else:
            lo = draw(st.integers(0, 9))
            hi = draw(st.integers(lo, lo + 9))
            jobid, tasks = f"{raw}_[{lo}-{hi}]", hi - lo + 1
        gpus = draw(st.integers(0, 16))
        typed = draw(st.sampled_from(["", "h100", "a100_3g.20gb"]))
        tres = f"cpu=8,gres/gpu={gpus},mem=64G,node=1"
        if typed and gpus:
            tres += f",gres/gpu:{typed}={gpus},gres/gpumem=80G"
        state = draw(st.sampled_from(["COMPLETED", "FAILED", "CANCELLED by 1234", "TIMEOUT"]))
        elapsed = draw(st.integers(0, 3 * 86400))
        row = job(
            JobID=jobid,
            JobIDRaw=str(raw),
            Cluster=cluster,
            Submit=submit,
            State=state,
            ElapsedRaw=str(elapsed),
            Account=draw(st.sampled_from(["project_a", "project_b"])),
            AllocTRES=tres,
        )
        steps = [step(row, s) for s in draw(st.lists(st.sampled_from(_STEP_SUFFIXES)))]
        copies = draw(st.integers(1, 3))
        jobs.append((row, steps, copies, tasks * gpus * elapsed))
    return jobs


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(jobs=allocations(), data=st.data())
def test_total_gpu_seconds_is_the_sum_over_distinct_allocations_in_any_order(jobs, data):
    rows = [r for row, steps, copies, _ in jobs for r in [row] * copies + steps]
    rows = data.draw(st.permutations(rows))
    parsable = data.draw(st.booleans())
    reading = read_export(export(rows, parsable=parsable))

    expected = sum(seconds for *_, seconds in jobs)
    assert reading.gpu_seconds == expected
    assert reading.duplicates == sum(copies - 1 for _, _, copies, _ in jobs)
    assert reading.steps == sum(len(steps) for _, steps, _, _ in jobs)
    assert reading.lines == len(rows)
    by_account: dict[str, int] = {}
    for row, _, _, seconds in jobs:
        by_account[row["Account"]] = by_account.get(row["Account"], 0) + seconds
    got: dict[str, int] = {}
    for (account, _), agg in reading.aggregates.items():
        got[account] = got.get(account, 0) + agg.gpu_seconds
    # Allocations of zero GPU-seconds (no time, or no GPU) may or may not leave an aggregate.
    assert {a: s for a, s in got.items() if s} == {a: s for a, s in by_account.items() if s}


def test_a_requeued_run_listed_with_duplicates_is_an_allocation_of_its_own():
    # sacct --duplicates lists each run of a requeued job, with its own Submit time.
    data = export(
        [
            job(State="REQUEUED", Submit="2026-03-01T00:00:00"),
            job(State="COMPLETED", Submit="2026-03-01T05:00:00"),
        ]
    )
    assert read_export(data).allocations == 2


def test_field_names_are_read_in_any_case_as_sacct_format_takes_them():
    lower = [f.lower() for f in FIELDS]
    data = export([job()])
    body = data.split(b"\n", 1)[1]
    assert totals(read_export(body, fields=lower)) == totals(read_export(data))


def test_times_out_of_range_name_their_line():
    raises_at(2, "out of range", export([job(Start="0001-01-01T00:00:00")]), tz="Europe/Helsinki")


def test_an_overlong_gpu_type_is_refused():
    raises_at(2, "names no GPU type", export([job(AllocTRES="gres/gpu:" + "x" * 80 + "=1")]))
