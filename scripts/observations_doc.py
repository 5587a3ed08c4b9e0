"""Generate docs/observations.md from the Code registry and the map below of
the test that produces each code.  `python scripts/observations_doc.py` rewrites
the doc; tests/core/test_docs.py fails when the doc is out of date or a named
test does not exist."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from cncf.observation import Code  # noqa: E402

E = "tests/core/test_engine.py"
M = "tests/core/test_manifest.py"
C = "tests/core/test_cli.py"
PF = "tests/python_form/test_faults.py"
PY = "tests/python_form/test_forms.py"
JF = "tests/jar/test_jar_faults.py"
HC = "tests/http/test_calls.py"
HR = "tests/http/test_rejected.py"
CR = "tests/contract/test_rejected.py"
HA = "tests/http/test_admin.py"
HS = "tests/http/test_serve.py"
PL = "tests/placement/test_placement.py"
FI = "tests/faults/test_inputs.py"
FP = "tests/faults/test_processes.py"
FT = "tests/faults/test_trust.py"
RG = "tests/replicas/test_generations.py"

# code -> tests that produce it ("path::function"); every code needs at least one.
PRODUCED_BY: dict[Code, list[str]] = {
    Code.ARTIFACT_NOT_FOUND: [
        f"{M}::test_missing_target_and_unknown_form",
        f"{C}::test_readable_observation_and_load_failure",
        f"{PF}::test_missing_artifact",
    ],
    Code.ARCHIVE_TOO_LARGE: [
        f"{FT}::test_zip_bomb_is_refused_before_extraction",
        f"{FT}::test_too_many_members_is_archive_too_large",
    ],
    Code.FORM_NOT_ALLOWED: [
        f"{FP}::test_cli_runs_inline_only_when_asked",
        f"{HA}::test_inline_only_when_the_request_asks_for_it",
    ],
    Code.INVALID_ARCHIVE: [
        f"{FT}::test_zip_slip_is_an_archive_code",
        f"{PF}::test_corrupt_artifact",
        f"{JF}::test_corrupt_jar",
        f"{JF}::test_fat_jar_with_stale_signature_files",
    ],
    Code.INVALID_MANIFEST: [
        f"{M}::test_bad_values_name_file_key_and_expectation",
        f"{FI}::test_non_finite_policy_value_is_invalid_manifest",
        f"{FI}::test_value_the_os_refuses_is_invalid_manifest_and_leaks_nothing",
        f"{FI}::test_unreadable_manifest_is_a_failed_handle_never_an_exception",
        f"{FT}::test_loader_variables_only_when_the_hub_allows",
        f"{E}::test_services_naming_a_missing_operation_is_a_manifest_observation",
    ],
    Code.UNSUPPORTED_FORM: [f"{M}::test_missing_target_and_unknown_form"],
    Code.COMPONENT_CONFLICT: [f"{E}::test_entry_not_found_and_conflict"],
    Code.ENTRY_NOT_FOUND: [
        f"{E}::test_entry_not_found_and_conflict",
        f"{PY}::test_missing_entry_class",
        f"{JF}::test_facade_class_not_found",
        f"{JF}::test_no_entry_and_no_collaborator",
    ],
    Code.ENTRY_AMBIGUOUS: [
        f"{PY}::test_ambiguous_folder_names_its_candidates",
        f"{JF}::test_several_collaborators_are_ambiguous",
    ],
    Code.IMPORT_FAILED: [
        f"{E}::test_load_failures_give_a_failed_handle_and_every_call_returns_it",
        f"{PF}::test_load_fault",
    ],
    Code.DEPENDENCY_UNRESOLVED: [
        f"{E}::test_load_failures_give_a_failed_handle_and_every_call_returns_it",
        f"{PF}::test_load_fault",
        f"{PY}::test_unresolvable_requirement_carries_the_resolver_message",
    ],
    Code.ENVIRONMENT_FAILED: [f"{PY}::test_environment_that_cannot_be_created"],
    Code.INTERPRETER_NOT_FOUND: [f"{PY}::test_missing_interpreter"],
    Code.WORKER_START_FAILED: [
        f"{PY}::test_worker_that_exits_before_its_handshake",
        f"{JF}::test_bad_jvm_option_fails_the_host_start",
        f"{JF}::test_no_jdk_is_a_load_observation",
    ],
    Code.CLASS_NOT_FOUND: [f"{JF}::test_execute_faults", f"{JF}::test_missing_dependency_at_load"],
    Code.LINKAGE_ERROR: [f"{JF}::test_execute_faults", f"{JF}::test_incompatible_class_change_at_load"],
    Code.INITIALIZER_FAILED: [f"{JF}::test_static_initialiser_throws"],
    Code.PLACEMENT_UNAVAILABLE: [f"{PL}::test_without_ray_placement_is_a_load_observation"],
    Code.CLUSTER_UNREACHABLE: [f"{PL}::test_unreachable_cluster_fails_the_load"],
    Code.PLACEMENT_INFEASIBLE: [f"{PL}::test_infeasible_placement_fails_the_load_at_once"],
    Code.PLACEMENT_TIMEOUT: [f"{PL}::test_busy_nodes_are_a_placement_timeout_not_an_endless_wait"],
    Code.CONSTRUCTOR_FAILED: [
        f"{E}::test_load_failures_give_a_failed_handle_and_every_call_returns_it",
        f"{PF}::test_load_fault",
        f"{JF}::test_constructor_throws",
    ],
    Code.UNKNOWN_OPERATION: [f"{E}::test_unknown_operation_lists_candidates"],
    Code.AMBIGUOUS_OPERATION: [f"{E}::test_ambiguous_operation_when_the_service_is_omitted"],
    Code.UNKNOWN_COMPONENT: [f"{E}::test_unknown_component_and_bad_selector_and_bad_timeout"],
    Code.INVALID_ARGUMENTS: [
        f"{E}::test_failures_become_observations_and_the_component_keeps_serving",
        f"{PY}::test_module_functions_are_operations",
    ],
    Code.ARGUMENTS_TOO_LARGE: [
        f"{FI}::test_deep_argument_is_refused_for_that_call_alone",
        f"{FI}::test_worker_refuses_an_over_deep_frame_without_exiting",
    ],
    Code.CALL_ID_IN_USE: [f"{FI}::test_duplicate_call_id_is_an_observation_and_cancel_hits_the_first"],
    Code.INVALID_POLICY: [
        f"{FI}::test_call_timeout_nan_is_refused_at_dispatch",
        f"{E}::test_unknown_component_and_bad_selector_and_bad_timeout",
    ],
    Code.READINESS_FAILED: [f"{RG}::test_a_new_generation_that_is_not_ready_rolls_back"],
    Code.HANDOVER_FAILED: [f"{RG}::test_a_failed_hand_over_rolls_back_with_the_state"],
    Code.COMPONENT_UNAVAILABLE: [f"{PY}::test_states", f"{JF}::test_restart_never_leaves_the_component_unavailable"],
    Code.HUB_CLOSED: [f"{E}::test_unload_and_calls_after_close"],
    Code.WAIT_TIMEOUT: [f"{E}::test_wait_timeout_is_a_wait_observation_and_the_next_call_succeeds"],
    Code.CANCELLED_WAITING: [f"{E}::test_cancel_a_waiting_call"],
    Code.INSTANCE_LOST_WAITING: [f"{E}::test_waiters_are_woken_when_the_component_is_unloaded"],
    Code.RAISED: [
        f"{E}::test_failures_become_observations_and_the_component_keeps_serving",
        f"{PF}::test_execute_fault",
        f"{CR}::test_anything_else_an_operation_raises_is_the_components_own_failure",
        f"{HR}::test_an_exception_of_the_components_own_answers_500",
    ],
    Code.REJECTED: [
        f"{CR}::test_a_rejection_is_the_callers_fault_and_the_component_serves_on",
        "tests/jar/test_jar_rejected.py::test_scala_rejection_is_rejected_with_its_message",
        f"{HR}::test_a_rejection_answers_400_with_the_components_message",
    ],
    Code.EXIT_REQUESTED: [
        f"{E}::test_failures_become_observations_and_the_component_keeps_serving",
        f"{PF}::test_execute_fault",
        f"{PF}::test_load_fault",
    ],
    Code.OPERATION_FAILED: [
        f"{E}::test_collaborator_failure_keeps_its_code_and_attributes",
        f"{PY}::test_collaborator_receives_calls_itself",
        "tests/jar/test_jar_basics.py::test_collaborator_failure_keeps_its_code_and_attributes",
    ],
    Code.TIMED_OUT: [
        f"{E}::test_run_timeout_is_an_execute_observation_and_the_next_call_succeeds",
        f"{PF}::test_execute_fault",
        f"{JF}::test_cooperative_timeout_interrupts_the_thread",
        f"{JF}::test_endless_loop_is_killed_with_the_host",
    ],
    Code.CANCELLED: [
        f"{E}::test_cancel_a_running_call_cooperatively",
        f"{PY}::test_explicit_cancel",
        "tests/jar/test_jar_isolation.py::test_caller_cancellation",
    ],
    Code.WORKER_CRASHED: [
        f"{FP}::test_frozen_shared_host_is_detected_and_neighbours_recover",
        "tests/jobs/test_forms.py::test_job_that_kills_its_worker_is_quarantined",
        f"{PF}::test_execute_fault",
        f"{PF}::test_load_fault",
        f"{JF}::test_system_exit_kills_the_host_and_neighbours_are_restarted",
    ],
    Code.OUT_OF_MEMORY: [
        f"{E}::test_failures_become_observations_and_the_component_keeps_serving",
        f"{PF}::test_execute_fault",
        f"{JF}::test_out_of_memory_in_a_heap_limited_host",
    ],
    Code.STACK_OVERFLOW: [
        f"{E}::test_failures_become_observations_and_the_component_keeps_serving",
        f"{PF}::test_execute_fault",
        f"{JF}::test_execute_faults",
    ],
    Code.RESULT_NOT_SERIALISABLE: [
        f"{E}::test_failures_become_observations_and_the_component_keeps_serving",
        f"{PF}::test_execute_fault",
        f"{JF}::test_execute_faults",
    ],
    Code.PROTOCOL_ERROR: [f"{PY}::test_worker_that_breaks_the_protocol"],
    Code.NODE_LOST: [
        f"{PL}::test_node_loss_fails_calls_in_flight_and_the_next_call_restarts_on_a_fitting_node",
        f"{PL}::test_a_frozen_node_is_lost_by_its_missing_heartbeat",
    ],
    Code.IDEMPOTENCY_CONFLICT: [f"{FT}::test_idempotency_key_reused_for_other_arguments_is_an_observation"],
    Code.JOB_STORE_CORRUPT: [f"{FT}::test_corrupt_store_is_an_error_naming_the_file"],
    Code.JOB_STORE_UNAVAILABLE: [
        "tests/jobs/test_store_shape.py::test_a_store_another_writer_holds_past_the_wait_is_unavailable_never_empty"
    ],
    Code.ENQUEUE_FAILED: [
        f"{FT}::test_corrupt_store_is_an_error_naming_the_file",
        "tests/jobs/test_enqueue_failures.py::test_payload_that_is_not_json",
        "tests/jobs/test_enqueue_failures.py::test_disk_full",
    ],
    Code.JOB_NOT_FOUND: ["tests/jobs/test_states.py::test_unknown_job"],
    Code.JOB_CANCELLED: ["tests/jobs/test_delivery.py::test_cancel_a_queued_job"],
    Code.JOB_LOST: ["tests/jobs/test_crash.py::test_job_that_keeps_killing_its_hub_is_quarantined"],
    Code.JOB_QUARANTINED: [
        "tests/jobs/test_delivery.py::test_exhausted_attempts_quarantine_the_job_with_every_observation",
        "tests/jar/test_jar_jobs.py::test_jar_job_that_kills_its_host_is_quarantined",
    ],
    Code.UNAUTHENTICATED: [
        f"{HC}::test_refused_requests_are_observations",
        f"{HS}::test_non_loopback_needs_an_explicit_token",
    ],
    Code.FORBIDDEN: [
        f"{HC}::test_refused_requests_are_observations",
        "tests/http/test_browser.py::test_cross_origin_requests_are_refused_on_every_route",
    ],
    Code.ROUTE_NOT_FOUND: [f"{HC}::test_refused_requests_are_observations"],
    Code.BODY_TOO_LARGE: [f"{HC}::test_refused_requests_are_observations"],
    Code.BODY_NOT_JSON: [f"{HC}::test_refused_requests_are_observations"],
    Code.HUB_UNREACHABLE: ["tests/http/test_client.py::test_an_unreachable_hub_is_an_observation"],
    Code.INTERNAL_ERROR: [f"{E}::test_exactly_one_outcome_even_when_the_boundary_itself_breaks"],
}

HEADER = """# Observation taxonomy

Every failure reaches the caller as an `Observation` with one of the codes
below (`cncf.Code`).  Each code has a fixed **stage** (a few may also occur at
the other stages listed), and the classification the original CNCF uses:
category, symptom, cause kind, and whether retrying can help.  Code that
reacts to failures branches on `code` and these fields — never on `message`.

Stages: `load` (finding and loading the artifact), `instantiate` (creating
the live instance), `dispatch` (resolving the selector, checking arguments
and policy), `wait` (queued behind other calls), `execute` (running),
`job` (the durable queue), `reception` (a request the HTTP reception of
`cncf serve` refused before it became a call; see docs/http.md for the HTTP
status of every code).

This page is generated from the registry in `src/cncf/observation.py` by
`scripts/observations_doc.py`; `tests/core/test_docs.py` fails when they
disagree or when a test named here does not exist.

| code | stage | also at | category / symptom / cause | retryable | meaning | produced by |
| --- | --- | --- | --- | --- | --- | --- |
"""


def render() -> str:
    rows = []
    for code in Code:
        spec = code.spec
        tests = PRODUCED_BY.get(code, [])
        rows.append(
            f"| `{code.value}` | {spec.stage.value} | {', '.join(s.value for s in spec.also) or '—'} "
            f"| {spec.category} / {spec.symptom} / {spec.cause_kind} | {'yes' if spec.retryable else 'no'} "
            f"| {spec.meaning} | {'<br>'.join(f'`{t}`' for t in tests) or '**no test yet**'} |"
        )
    return HEADER + "\n".join(rows) + "\n"


if __name__ == "__main__":
    (ROOT / "docs" / "observations.md").write_text(render())
    print("wrote docs/observations.md")
