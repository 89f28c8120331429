"""Alerts on state changes: one neutral document per change, sent in each channel's own form.

The outbox keeps the neutral document (never a secret); `wire` turns it into what the channel
takes, reading URLs and PagerDuty's routing key from the environment when it is sent:

- `webhook`: the document itself, as JSON;
- `slack`: a Slack incoming-webhook message (`text` and `blocks`);
- `pagerduty`: an Events API v2 event: `trigger` on breached (critical) and degraded (warning),
  `resolve` on healthy, with a `dedup_key` stable per policy and integration point.

`send` is the one place alerts touch the network (the standard library's HTTP client).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from guard.errors import ConfigurationError
from guard.policy.model import NotifySpec

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
_STATE_WORDS = {
    "breached": "is breached",
    "degraded": "is at risk (degraded)",
    "no_data": "reports no data",
    "healthy": "is healthy again",
}
_EMOJI = {"breached": ":red_circle:", "degraded": ":large_orange_circle:", "no_data": ":white_circle:",
          "healthy": ":large_green_circle:"}  # fmt: skip


def summary(document: Mapping[str, Any]) -> str:
    """One line for people: `sap → customer is breached: behind by 47m; agreed 15m (finance-systems)`."""
    name = f"{document['source']} → {document['object']}"
    words = _STATE_WORDS.get(document["state"], f"is {document['state']}")
    findings = "; ".join(_without_name(text, name) for text in document["findings"][:2])
    team = f" ({document['team']})" if document.get("team") else ""
    return f"{name} {words}" + (f": {findings}" if findings else "") + team


def _without_name(finding: str, name: str) -> str:
    return finding.removeprefix(f"{name}: ")


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One HTTP request to make: where, and the JSON body."""

    url: str
    body: dict[str, Any]


def wire(spec: NotifySpec, document: Mapping[str, Any], environ: Mapping[str, str]) -> Outgoing | None:
    """The request that tells this channel of the change; None when the channel takes no message for it."""
    if spec.kind == "pagerduty":
        return _pagerduty(spec, document, environ)
    url = _required(environ, spec.webhook_env, f"the {spec.kind} URL")
    if spec.kind == "slack":
        return Outgoing(url, _slack(document))
    return Outgoing(url, {"event": "freshguard.state_change", **document})


def _slack(document: Mapping[str, Any]) -> dict[str, Any]:
    text = f"{_EMOJI.get(document['state'], '')} {summary(document)}".strip()
    findings = "\n".join(f"• {finding}" for finding in document["findings"]) or "No findings."
    context = [f"policy {document['policy']['name']} v{document['policy']['version']}", f"at {document['at']}"]
    if document.get("incident"):
        context.append(f"incident #{document['incident']['id']}")
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{text}*"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": findings}},
    ]
    said = impact_words(document)
    if said or document.get("runbook"):
        lines = [f"Impact: {said}"] if said else []
        lines += [f"<{document['runbook']}|Runbook>"] if document.get("runbook") else []
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}})
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(context)}]})
    return {"text": text, "blocks": blocks}


def impact_words(document: Mapping[str, Any]) -> str | None:
    """The incident's impact as `guard.impact` words it, when the document carries one."""
    incident = document.get("incident") or {}
    impact = incident.get("impact")
    return None if not impact else str(impact["summary"])


def dedup_key(document: Mapping[str, Any]) -> str:
    """PagerDuty's dedup key: one alert per policy and integration point, triggered and resolved."""
    return f"freshguard/{document['policy']['name']}/{document['source']}/{document['object']}"


def _pagerduty(spec: NotifySpec, document: Mapping[str, Any], environ: Mapping[str, str]) -> Outgoing | None:
    state = document["state"]
    if state not in ("breached", "degraded", "healthy"):
        return None  # PagerDuty pages on breaches and fast burns; "no data" goes to the other channels
    url = environ.get(spec.webhook_env, "") if spec.webhook_env is not None else ""
    key = _required(environ, spec.routing_key_env, "the PagerDuty routing key")
    if state == "healthy":
        return Outgoing(url or PAGERDUTY_EVENTS_URL,
                        {"routing_key": key, "event_action": "resolve", "dedup_key": dedup_key(document)})  # fmt: skip
    return Outgoing(
        url or PAGERDUTY_EVENTS_URL,
        {
            "routing_key": key,
            "event_action": "trigger",
            "dedup_key": dedup_key(document),
            "payload": {
                "summary": summary(document)[:1024],
                "source": f"freshguard/{document['policy']['name']}",
                "severity": "critical" if state == "breached" else "warning",
                "component": document["source"],
                "group": document["object"],
                "class": ",".join(document.get("breaches") or [state]),
                "custom_details": {"findings": document["findings"], "team": document.get("team"),
                                   "incident": document.get("incident"), "impact": impact_words(document),
                                   "runbook": document.get("runbook"), "at": document["at"]},
            },
            **({"links": [{"href": document["runbook"], "text": "Runbook"}]} if document.get("runbook") else {}),
        },
    )  # fmt: skip


def _required(environ: Mapping[str, str], name: str | None, what: str) -> str:
    value = environ.get(name, "") if name is not None else ""
    if not value:
        raise ConfigurationError(_unset(what, name))
    return value


def _unset(what: str, name: str | None) -> str:
    return f"{what} is not set: set the environment variable {name} (named in the policy)"


@dataclass(frozen=True, slots=True)
class Unset:
    """An alert channel that cannot deliver: the environment variable it needs is not set."""

    channel: str
    variable: str | None
    what: str

    def __str__(self) -> str:
        return f"alert channel {self.channel}: {_unset(self.what, self.variable)}"


def unconfigured(channels: Mapping[str, NotifySpec], environ: Mapping[str, str]) -> dict[str, Unset]:
    """Channels that cannot deliver for want of an environment variable, each with what to set."""
    out: dict[str, Unset] = {}
    for name, spec in channels.items():
        variable, what = (
            (spec.routing_key_env, "the PagerDuty routing key")
            if spec.kind == "pagerduty"
            else (spec.webhook_env, f"the {spec.kind} URL")
        )
        if not (environ.get(variable, "") if variable is not None else ""):
            out[name] = Unset(name, variable, what)
    return out


class DeliveryError(Exception):
    """A channel did not take an alert; `retry` says whether trying again may help."""

    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


def send(outgoing: Outgoing, timeout_s: float = 10.0) -> None:
    """POST the alert; DeliveryError unless the receiver answers 2xx."""
    request = urllib.request.Request(  # noqa: S310 - URLs come from the operator's environment
        outgoing.url,
        data=json.dumps(outgoing.body).encode(),
        headers={"Content-Type": "application/json", "User-Agent": "freshguard-alerts"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            response.read()
    except urllib.error.HTTPError as exc:
        retry = exc.code in (408, 425, 429) or exc.code >= 500
        raise DeliveryError(f"{where(outgoing.url)} answered {exc.code} {exc.reason}", retry=retry) from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(f"cannot reach {where(outgoing.url)}: {reason}", retry=True) from exc


def where(url: str) -> str:
    """A URL as messages may show it: scheme and host only (a webhook's path is often its secret)."""
    parts = urllib.parse.urlsplit(url)
    return (
        f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "") if parts.hostname else "(url)"
    )
