"""Schemathesis checks of our own, loaded by tests/api/schemathesis.toml (`st run --config-file ...`).

Schemathesis' `positive_data_acceptance` takes a request the schema allows to be refused only with
401, 403, 404 or 409. Ours refuses some well-formed requests for what they mean (a change to an
object the policy does not cover, a cursor it did not give, a heartbeat dated in the future), and
says so: each is a problem type of its own, listed in the OpenAPI document. So the check here is
stricter where it matters: a request the schema allows is never refused as malformed.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from schemathesis.checks import CheckContext

from api.problem_types import PROBLEM_TYPES, URN_PREFIX


@schemathesis.check
def well_formed_requests_are_never_refused_as_malformed(
    ctx: CheckContext, response: Any, case: schemathesis.Case[Any]
) -> bool | None:
    """A request the schema allows is served, or refused with a problem type that says what it means."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or not 400 <= response.status_code < 500:
        return None
    try:
        said = response.json()
    except ValueError:
        said = None
    kind = said.get("type") if isinstance(said, dict) else None
    problem_type = PROBLEM_TYPES.get(kind.removeprefix(URN_PREFIX)) if isinstance(kind, str) else None
    if problem_type is None or problem_type.malformed:
        raise AssertionError(
            f"a request the schema allows was refused {response.status_code} as {kind or 'not a problem'}: the "
            "schema promises more than the service takes; make the schema say what the service checks"
        )
    return None


@schemathesis.check
class EveryOperationServed:
    """Every operation answered 2xx in the run; every one that takes an id, in the stateful phase (by its links).

    A stateful request to `GET /v1/runs/{run_id}` is served only when a link gave it a run id that exists,
    so this is what says that the document's links lead to every operation that needs one.
    """

    def __init__(self) -> None:
        self.operations: set[str] = set()
        self.needing_an_id: set[str] = set()
        self.served: set[str] = set()
        self.served_by_links: set[str] = set()

    def after_response(self, ctx: CheckContext, response: Any, case: schemathesis.Case[Any]) -> None:
        """Note whether the operation served the request, and in which phase."""
        if not self.operations:
            for found in case.operation.schema.get_all_operations():
                operation = found.ok()
                self.operations.add(operation.label)
                if "{" in operation.path:
                    self.needing_an_id.add(operation.label)
        if 200 <= response.status_code < 300:
            self.served.add(case.operation.label)
            if ctx.phase == "stateful":
                self.served_by_links.add(case.operation.label)

    def after_run(self, ctx: CheckContext) -> None:
        """Fail for every operation never served, and every one needing an id that no link led to."""
        never = sorted(self.operations - self.served)
        unlinked = sorted(self.needing_an_id - self.served_by_links)
        if never or unlinked:
            raise AssertionError(
                f"never answered 2xx: {', '.join(never) or 'none'}; never answered 2xx in the stateful phase, "
                f"which follows the links: {', '.join(unlinked) or 'none'}"
            )
