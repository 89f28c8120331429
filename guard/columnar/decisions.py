"""What a check of a frame decided, as columns: the decisions frame, the actions, the owner versions learned."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import polars as pl

from guard.columnar.shapes import Shape, worded_expr
from guard.columnar.stamps import datetimes
from guard.decisions import Action, DecisionTable, Entity, Reason, ReasonCode
from guard.engine import action_of

if TYPE_CHECKING:
    from guard.checks.compiled import CompiledPolicy
    from guard.columnar.screen import Template

_TEXTS = pl.List(pl.String)
#: How messages name a record: `customer C-1042 from sap`.
_LABEL = pl.concat_str(pl.col("object"), pl.lit(" "), pl.col("key"), pl.lit(" from "), pl.col("source")).alias("label")
_ACTIONS = {action.value: action for action in Action}
#: The columns of a decisions frame, in order.
DECISION_COLUMNS = ("id", "object", "key", "source", "action", "codes", "messages", "age_s")


class FrameDecisions:
    """The decisions of a frame's check: per row, reasons kept as templates (shared) or as Reasons (the rest).

    `shapes` are the first pass's reasons of the rows judged by shape, `early` the other reasons of
    the first pass and duplicate ids, `late` those of contracts and conflicts; a row's reasons are,
    in order: its age or its shape's, `early`, SUPERSEDED, `late`, as `guard.engine` finds them.
    """

    def __init__(
        self,
        work: pl.DataFrame,
        templates: list[Template],
        shapes: list[Shape],
        early: dict[int, list[Reason]],
        late: dict[int, list[Reason]],
    ) -> None:
        self.templates, self.shapes, self.early, self.late = templates, shapes, early, late
        self.work = work
        self.frame = self._decisions_frame()

    def _decisions_frame(self) -> pl.DataFrame:
        codes = pl.DataFrame(
            {
                "t": list(range(len(self.templates))),
                "code": [t.reason.code.value for t in self.templates],
                "words": [t.reason.message for t in self.templates],
            },
            schema={"t": pl.Int64, "code": pl.String, "words": pl.String},
        )
        spoken = (
            _spoken(self.early, "early")
            .join(_spoken(self.late, "late"), on="i", how="full", coalesce=True)
            .join(self._shaped(), on="i", how="full", coalesce=True)
        )
        spoken_rows = spoken.get_column("i").implode()
        problems = (
            self.work.lazy()
            .filter(pl.col("fresh").is_not_null() | pl.col("superseded").is_not_null() | pl.col("i").is_in(spoken_rows))
            .select("i", "fresh", "superseded", label=_LABEL)
            .join(
                codes.lazy().rename({"t": "fresh", "code": "fresh_code", "words": "fresh_words"}),
                on="fresh",
                how="left",
            )
            .join(
                codes.lazy().rename({"t": "superseded", "code": "sup_code", "words": "sup_words"}),
                on="superseded",
                how="left",
            )
            .join(spoken.lazy(), on="i", how="left")
        )
        label = pl.col("label")
        codes_expr = pl.concat_list(
            _one(pl.col("fresh_code")),
            _some(pl.col("shaped")),
            _some(pl.col("early")),
            _one(pl.col("sup_code")),
            _some(pl.col("late")),
        )
        words = pl.concat_list(
            _one(pl.concat_str(label, pl.col("fresh_words"))),
            _some(pl.col("shaped_words")),
            _some(pl.col("early_words")),
            _one(pl.concat_str(label, pl.col("sup_words"))),
            _some(pl.col("late_words")),
        )
        found = problems.select("i", codes=codes_expr, messages=words).with_columns(
            action=pl.when(pl.col("codes").list.count_matches(ReasonCode.AGING.value) < pl.col("codes").list.len())
            .then(pl.lit(Action.BLOCK.value))
            .otherwise(pl.lit(Action.WARN.value))
        )
        decided = (
            self.work.lazy()
            .select("i", "id", "object", "key", "source", age_s=pl.col("age"))
            .join(found, on="i", how="left", maintain_order="left")
            .with_columns(
                codes=_some(pl.col("codes")),
                messages=_some(pl.col("messages")),
                action=pl.col("action").fill_null(pl.lit(Action.ALLOW.value)),
            )
        )
        return decided.select(DECISION_COLUMNS).collect()

    def _shaped(self) -> pl.DataFrame:
        """The codes and messages of the rows decided by shape: columns `i`, `shaped` and `shaped_words`."""
        reasons = pl.DataFrame(
            [
                (number, position, reason.code.value, reason.message)
                for number, shape in enumerate(self.shapes)
                for position, reason in enumerate(shape.reasons)
            ],
            schema={"shape": pl.Int64, "position": pl.Int64, "shaped": pl.String, "words": pl.String},
            orient="row",
        )
        return (
            self.work.lazy()
            .filter(pl.col("shape").is_not_null())
            .select("i", "id", "key", "shape")
            .join(reasons.lazy(), on="shape")
            .sort("i", "position")
            .group_by("i", maintain_order=True)
            .agg("shaped", shaped_words=worded_expr(pl.col("words")))
            .collect()
        )

    def counts(self) -> dict[Action, int]:
        """How many rows got each action."""
        found = dict(self.frame.get_column("action").value_counts().iter_rows())
        return {action: int(found.get(action.value, 0)) for action in Action}

    def owner_versions(self, compiled: CompiledPolicy) -> dict[Entity, datetime]:
        """The newest `updated_at` per entity among the owner's rows this check did not block."""
        owners = pl.DataFrame(
            {"object": list(compiled.owners), "owner": list(compiled.owners.values())},
            schema={"object": pl.String, "owner": pl.String},
        )
        newest = (
            self.work.lazy()
            .select("object", "key", "source", "updated")
            .with_columns(action=self.frame.get_column("action"))
            .join(owners.lazy(), on="object")
            .filter(
                (pl.col("source") == pl.col("owner"))
                & (pl.col("action") != Action.BLOCK.value)
                & pl.col("updated").is_not_null()
            )
            .group_by("object", "key")
            .agg(pl.col("updated").max())
            .collect()
        )
        entities = zip(newest.get_column("object").to_list(), newest.get_column("key").to_list(), strict=True)
        moments = datetimes(newest.get_column("updated"))
        return {entity: moment for entity, moment in zip(entities, moments, strict=True) if moment is not None}

    def table(self) -> DecisionTable:
        """The decisions as `guard.engine` gives them: a `DecisionTable` with every Reason in full."""
        work, frame = self.work, self.frame
        size = work.height
        reasons: list[tuple[Reason, ...]] = [()] * size
        templates = self.templates
        problems = frame.select(pl.col("codes").list.len() > 0).to_series().arg_true()
        picked = work[problems.to_list()].select("i", _LABEL, "fresh", "superseded", "shape", "id", "key")
        for index, label, fresh, superseded, shape, rid, key in picked.iter_rows():
            found: list[Reason] = []
            if fresh is not None:
                found.append(templates[fresh].for_label(label))
            if shape is not None:
                found.extend(self.shapes[shape].worded(rid, key))
            found.extend(self.early.get(index, ()))
            if superseded is not None:
                found.append(templates[superseded].for_label(label))
            found.extend(self.late.get(index, ()))
            reasons[index] = tuple(found)
        return DecisionTable(
            ids=work.get_column("id").to_list(),
            actions=[action_of(found) if found else Action.ALLOW for found in reasons],
            reasons=reasons,
            objects=work.get_column("object").to_list(),
            keys=work.get_column("key").to_list(),
            sources=work.get_column("source").to_list(),
            observed=datetimes(work.get_column("observed")),
            updated=datetimes(work.get_column("updated")),
            ages=work.get_column("age").to_list(),
        )


def _spoken(reasons: dict[int, list[Reason]], name: str) -> pl.DataFrame:
    """The codes and messages of Python reasons, by row: columns `i`, `{name}` and `{name}_words`."""
    rows, codes, words = [], [], []
    for index, found in reasons.items():
        for reason in found:
            rows.append(index)
            codes.append(reason.code.value)
            words.append(reason.message)
    flat = pl.DataFrame(
        {"i": rows, name: codes, f"{name}_words": words},
        schema={"i": pl.Int64, name: pl.String, f"{name}_words": pl.String},
    )
    return flat.group_by("i", maintain_order=True).agg(name, f"{name}_words")


def _one(value: pl.Expr) -> pl.Expr:
    return pl.when(value.is_null()).then(pl.lit([], dtype=_TEXTS)).otherwise(pl.concat_list(value))


def _some(values: pl.Expr) -> pl.Expr:
    return values.fill_null(pl.lit([], dtype=_TEXTS))
