"""OpenAPI links: where the values in an answer lead (a check's run id to the run, an incident to its page).

A route declares them on its 200 answer with `links(...)`; /docs shows them under the response,
and a client or a stateful fuzzer follows them from the operation that makes an id to those that use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Link:
    """An operation ("GET /v1/runs/{run_id}") whose parameters (and body) runtime expressions fill from an answer."""

    operation: str
    description: str
    parameters: Mapping[str, str] = field(default_factory=dict)
    body: Mapping[str, Any] | None = None

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI Link Object."""
        method, path = self.operation.split(" ")
        pointer = path.replace("~", "~0").replace("/", "~1")
        document: dict[str, Any] = {
            "operationRef": f"#/paths/{pointer}/{method.lower()}",
            "description": f"`{self.operation}`: {self.description}",
        }
        if self.parameters:
            document["parameters"] = dict(self.parameters)
        if self.body is not None:
            document["requestBody"] = dict(self.body)
        return document


def links(**named: Link) -> dict[int | str, dict[str, Any]]:
    """A route's `responses` entry that puts these links, by name, on its 200 answer."""
    return {200: {"links": {name: link.openapi() for name, link in named.items()}}}


def body(pointer: str, *, sent: bool = False) -> str:
    """The runtime expression for a member of the answer's body (`body("/runs/0/run_id")`), or of the request's."""
    return f"${'request' if sent else 'response'}.body#{pointer}"


# The operations that take an id another operation makes; `at` points into the answer that leads there.


def to_run(at: str) -> Link:
    """`GET /v1/runs/{run_id}` for the run id at `at`."""
    return Link("GET /v1/runs/{run_id}", "The check, with every decision it made.", {"run_id": body(at)})


def to_consumption(at: str) -> Link:
    """`POST /v1/runs/{run_id}/consumption` for the run id at `at`."""
    return Link(
        "POST /v1/runs/{run_id}/consumption",
        "Link the model call that consumed the check's allowed records.",
        {"run_id": body(at)},
    )


def to_lineage(at: str, *, sent: bool = False) -> Link:
    """`GET /v1/lineage/{object}/{key}` for the entity whose `object` and `key` are members of `at` (in the request)."""
    return Link(
        "GET /v1/lineage/{object}/{key}",
        "Everything decided about the entity.",
        {"object": body(f"{at}/object", sent=sent), "key": body(f"{at}/key", sent=sent)},
    )


def to_incident(at: str) -> Link:
    """`GET /v1/incidents/{incident_id}` for the incident id at `at`."""
    return Link("GET /v1/incidents/{incident_id}", "The incident, with what it touched.", {"incident_id": body(at)})


def to_acknowledge(at: str) -> Link:
    """`POST /v1/incidents/{incident_id}/acknowledge` for the incident id at `at`."""
    return Link("POST /v1/incidents/{incident_id}/acknowledge", "Say that someone is on it.", {"incident_id": body(at)})


def to_policy_version(at: str) -> Link:
    """`GET /v1/policy/versions/{version}` for the version number at `at`."""
    return Link("GET /v1/policy/versions/{version}", "The policy version, as published.", {"version": body(at)})


def to_heartbeat(at: str, *, synced_at: str) -> Link:
    """`POST /v1/sources/{source}/heartbeats` for the point at `at`, synced as of the time at `synced_at`."""
    return Link(
        "POST /v1/sources/{source}/heartbeats",
        "Report a sync of the integration point.",
        {"source": body(f"{at}/source")},
        {"object": body(f"{at}/object"), "synced_at": body(synced_at)},
    )
