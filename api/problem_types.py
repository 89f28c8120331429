"""Every problem type the service answers: `urn:freshguard:problem:<name>`, what it means, and an example.

A route's OpenAPI responses name the types it may answer (`api.problems.responses`), and the
document restricts each error response's `type` to them: a client, or a fuzzer, knows every
refusal in advance. `problem()` refuses a name that is not here, so the list cannot fall behind.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

URN_PREFIX = "urn:freshguard:problem:"


@dataclass(frozen=True, slots=True)
class ProblemType:
    """One kind of problem: its name, what it means, and an example detail for each status it comes with."""

    name: str
    meaning: str
    examples: Mapping[int, str]
    #: The request is not of the form the OpenAPI document describes: a request the schema allows never gets it.
    malformed: bool = False

    @property
    def urn(self) -> str:
        """The problem's `type`."""
        return URN_PREFIX + self.name


_TYPES = (
    # What any route may answer, from the service's shared handlers.
    ProblemType("not-json", "The body is not JSON, or is not sent as JSON (Content-Type: application/json).", {
        400: "the body is not JSON (Expecting value); send JSON with Content-Type: application/json",
        415: "the body is text/csv, not JSON; send it with Content-Type: application/json",
    }, malformed=True),
    ProblemType("bad-request", "The body could not be read (for example, JSON nested too deeply).", {
        400: "the body could not be read as JSON: it is nested too deeply or is not valid JSON text; send records "
        "as JSON objects nested at most a few hundred levels",
    }, malformed=True),
    ProblemType("invalid-request", "The request is not of the shape the endpoint takes; `errors` names every "
                "location.", {
        422: "the request does not have the shape POST /v1/check takes: body.records: Input should be a valid list",
        400: "messages must be a list of chat messages",
    }, malformed=True),
    ProblemType("unauthorized", "No API key, or one the service does not accept.", {
        401: "this endpoint needs an API key: send `Authorization: Bearer <key>` (or `X-API-Key`)",
    }),
    ProblemType("forbidden", "The API key's role (or the source it is bound to) may not do this; the detail names "
                "the key needed.", {
        403: "this endpoint needs a pipeline or admin key; the key sent is a viewer key",
    }),
    ProblemType("not-found", "No such resource; the detail says where to find the ones there are.", {
        404: "no run '5d0c8f1e' in the lineage store; GET /v1/runs lists the recent ones",
    }),
    ProblemType("method-not-allowed", "The path does not take this method (`Allow` lists the ones it takes).", {
        405: "Method Not Allowed",
    }),
    ProblemType("conflict", "The request conflicts with the resource's state.", {409: "Conflict"}),
    ProblemType("too-large", "The body is over the service's size limit.", {
        413: "the request body is over this service's limit of 10,485,760 bytes; send fewer records",
    }),
    ProblemType("http-error", "Another HTTP error; the detail says which.", {
        503: "the guard is starting: its policy and lineage store are being loaded",
    }),
    ProblemType("store-unavailable", "The lineage store cannot be reached; try again once it is back.", {
        503: "cannot reach the lineage store postgresql+psycopg://guard@db/freshguard to list runs: OperationalError: "
        "connection refused; check that the database is up and that the URL is right",
    }),
    ProblemType("misconfigured", "The service is starting, or cannot serve this as configured.", {
        503: "the guard is not ready: its policy and lineage store are still being loaded",
    }),
    ProblemType("input-error", "The request is well formed but refused for what it says; the detail names what.", {
        422: "the heartbeat from sap for customer is dated 2027-01-01T00:00:00+00:00, in the future; send the time "
        "the sync finished, with its UTC offset",
    }),
    ProblemType("policy-error", "The policy cannot decide this request.", {422: "the policy has no object 'lead'"}),
    ProblemType("guard-error", "The guard refused the request; the detail says why.", {422: "the guard refused it"}),
    ProblemType("misdirected-request", "Without API keys the service answers only requests addressed to this "
                "machine by a loopback name (a guard against DNS rebinding).", {
        421: "this service runs without API keys, so it answers only requests addressed to 127.0.0.1, ::1 or "
        "localhost, not to 'rebind.example'; configure API keys to serve other names",
    }),
    ProblemType("request-timeout", "The client stopped sending its request body; the connection is closed.", {
        408: "the request body stalled: no byte for 10 s; send the whole body at once",
    }),
    ProblemType("idempotency-key-invalid", "The Idempotency-Key header is not a key this service takes.", {
        400: "Idempotency-Key must be 1 to 255 printable ASCII characters",
    }),
    ProblemType("idempotency-key-reused", "The Idempotency-Key was used before with another request body.", {
        422: "Idempotency-Key 'k-1' was used at 2026-12-07T10:00:00Z with another body; use a new key",
    }),
    ProblemType("idempotency-key-in-flight", "A request with this Idempotency-Key is still being answered.", {
        409: "a request with Idempotency-Key 'k-1' is still being answered; retry in a moment to get its answer",
    }),
    # What one route answers.
    ProblemType("too-many-records", "More records than the service checks at once: split them.", {
        413: "the check carries 20,000 records; this service takes at most 10,000 in one check: split them",
    }),
    ProblemType("too-many-changes", "More change notifications than the service takes at once: split them.", {
        413: "the request carries 20,000 changes; this service takes at most 10,000 at once: split them",
    }),
    ProblemType("unknown-object", "An object the policy in force does not cover; `errors` names each one.", {
        422: "policy support-assistant does not cover changes[0].object: 'lead' is not an object of the policy "
        "(it has: customer, invoice, order, product)",
    }),
    ProblemType("invalid-cursor", "A cursor this service did not give: pass `next_cursor` as it came.", {
        422: "query.cursor: not a cursor this service gave; pass next_cursor as it came",
    }),
    ProblemType("unsupported-media-type", "The body is sent neither as YAML nor as JSON.", {
        415: "the policy is text/csv; send it as application/yaml or application/json",
    }),
    ProblemType("not-utf8", "The body is not UTF-8 text.", {
        400: "the policy is not UTF-8 text (byte 12); send it as UTF-8",
    }, malformed=True),
    ProblemType("version-conflict", "The policy's version is not higher than every version published.", {
        409: "version: is 3, but version 3 is already published; publish it as version 4 (or higher)",
    }),
    ProblemType("policy-refused", "The policy does not load; `errors` names every path.", {
        422: "objects.customer.max_age: '1 fortnight' is not a duration (for example 15m, 1h, 2d)",
    }),
    ProblemType("policy-unusable", "The policy loads but cannot be used here (say, a signing key that is not set).", {
        422: "the policy cannot be used here: sources.stripe.signing_key: the variable STRIPE_SIGNING_KEY is not set",
    }),
    # What the OpenAI-compatible gateway answers (with OpenAI's `error` member as well).
    ProblemType("blocked", "A record the request carries is blocked and the gateway refuses (on_block: refuse).", {
        422: "customer C-2001 from sap is 3h 5m old; the limit agreed with sales-ops is 1h",
    }),
    ProblemType("no-upstream", "The gateway has no upstream model configured.", {
        503: "this Freshguard service has no upstream model configured; set FRESHGUARD_OPENAI_UPSTREAM_URL",
    }),
    ProblemType("unavailable", "The guard cannot check now; try again.", {
        503: "the guard is not ready: its policy and lineage store are still being loaded",
    }),
    ProblemType("upstream-unavailable", "The upstream model could not be reached, or did not answer in time.", {
        502: "the upstream model could not be reached (ConnectError); the request was checked but not answered",
        504: "the upstream model did not answer in time (ReadTimeout); the request was checked but not answered",
    }),
    ProblemType("upstream-auth", "The upstream model refused the gateway's own key: the operator's to fix.", {
        502: "the gateway's upstream key was refused; the operator must set FRESHGUARD_OPENAI_UPSTREAM_KEY",
    }),
)  # fmt: skip

PROBLEM_TYPES: Mapping[str, ProblemType] = {problem_type.name: problem_type for problem_type in _TYPES}

#: The types the shared handlers answer with each status, on every route that declares the status.
COMMON_TYPES: Mapping[int, tuple[str, ...]] = {
    400: ("not-json", "bad-request"),
    401: ("unauthorized",),
    403: ("forbidden",),
    404: ("not-found",),
    413: ("too-large",),
    415: ("not-json",),
    422: ("invalid-request",),
    503: ("store-unavailable", "misconfigured"),
}

#: The `type` of an HTTPException's problem, by status (others are `http-error`).
HTTP_ERROR_TYPES: Mapping[int, str] = {
    400: "bad-request", 401: "unauthorized", 403: "forbidden", 404: "not-found", 405: "method-not-allowed",
    408: "request-timeout", 409: "conflict", 413: "too-large",
}  # fmt: skip
