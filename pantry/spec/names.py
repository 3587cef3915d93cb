"""Group-by names (``metric_time__week``, ``customer__segment``) -> columns and joins.

Why here and only here: ``--group-by``, ``--where``, metric filters and the fan-out
check all ask the same question ("which column of which model is this name, and which
joins reach it?"). MetricFlow's rules apply: a join goes from any entity of the current
model to a model where that entity is primary, unique or natural, as a left join; a
join to a model where the entity is only foreign would fan out and is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from pantry.errors import PantryError, did_you_mean
from pantry.spec.model import Catalog, Dimension, SemanticModel
from pantry.spec.windows import GRAINS


@dataclass(frozen=True)
class Hop:
    """One left join: ``from_alias.<entity expr> = <alias>.<entity expr>``."""

    entity: str
    from_alias: str
    from_expr: str
    model: SemanticModel
    alias: str
    to_expr: str
    # partition dimensions both sides have (``is_partition: true``, same name): also joined
    # on, as MetricFlow does; (from expr, to expr, time granularity or None)
    partitions: tuple[tuple[str, str, str | None], ...] = ()
    # beyond the first hop: partition dimensions the measure's own model (``m0``) shares with
    # this model, also joined on, as MetricFlow joins the measure source and the dimension
    # source at the end of a path on their partitions
    home_partitions: tuple[tuple[str, str, str | None], ...] = ()


@dataclass(frozen=True)
class Resolved:
    """What a group-by name means for one measure's model."""

    name: str  # output column name
    kind: str  # metric_time | dimension | time_dimension | entity | metric
    grain: str | None = None
    model: SemanticModel | None = None
    alias: str = "m0"
    expr: str | None = None
    hops: tuple[Hop, ...] = ()
    dimension: Dimension | None = None
    metric: str | None = None  # kind "metric": the metric, grouped by the entity named ``entity``
    entity: str | None = None
    date_part: str | None = None  # ``__extract_<part>``: that part of the time, read at day grain


# MetricFlow's date parts (``metric_time__extract_dow``) and DuckDB's name for each: the day
# of the week is ISO's, Monday 1 to Sunday 7, as MetricFlow renders it
DATE_PARTS = {
    "year": "year",
    "quarter": "quarter",
    "month": "month",
    "week": "week",
    "day": "day",
    "dow": "isodow",
    "doy": "doy",
}


def date_part_of(name: str) -> tuple[str, str | None]:
    """``metric_time__extract_dow`` -> (``metric_time__day``, ``dow``); other names unchanged."""
    head, _, last = name.rpartition("__")
    if head and last.startswith("extract_") and last.removeprefix("extract_") in DATE_PARTS:
        return f"{head}__day", last.removeprefix("extract_")
    return name, None


def output_name(name: str) -> str:
    """A bare ``metric_time`` is named ``metric_time__day`` in the output, as in MetricFlow."""
    return "metric_time__day" if name == "metric_time" else name


def metric_time_grain(name: str) -> str | None:
    """The grain of a ``metric_time__<grain>`` name, else None."""
    parts = output_name(name).split("__")
    if parts[0] == "metric_time" and len(parts) == 2 and parts[1] in GRAINS:
        return parts[1]
    return None


def _shared_partitions(left: SemanticModel, right: SemanticModel) -> tuple[tuple[str, str, str | None], ...]:
    """Partition dimensions of the same name on both sides of a join. Time partitions are
    compared at the finer of their two grains."""
    pairs = []
    for dimension in left.dimensions:
        other = right.dimension(dimension.name)
        if dimension.is_partition and other is not None and other.is_partition:
            grain = None
            if dimension.type == "time":
                grain = min(dimension.time_granularity, other.time_granularity, key=GRAINS.index)
            pairs.append((dimension.expr, other.expr, grain))
    return tuple(pairs)


def _per_source(hops: list[Hop]) -> list[Hop]:
    """Aliases that name the whole path and the model it ends in, as MetricFlow joins each
    dimension source on its own: two dimensions reached through the same bridge into two
    different models join the bridge twice, so a bridge key that repeats fans out as in
    MetricFlow's answers; dimensions of one model through one path still share the joins."""
    if len(hops) < 2:
        return hops
    path = [h.model.name for h in hops]
    out: list[Hop] = []
    previous = "m0"
    for i, hop in enumerate(hops):
        alias = f"m{i + 1}_" + "_".join(path[: i + 1]) + ("" if i == len(hops) - 1 else f"__for_{path[-1]}")
        out.append(replace(hop, from_alias=previous, alias=alias))
        previous = alias
    return out


class NameResolver:
    """Resolves names against one home model (the model of the measure being aggregated)."""

    def __init__(self, catalog: Catalog, home: SemanticModel) -> None:
        self.catalog = catalog
        self.home = home

    def resolve(self, name: str) -> Resolved:
        base, part = date_part_of(output_name(name))
        if part is not None:
            return replace(self.resolve(base), name=output_name(name), date_part=part)
        name = output_name(name)
        parts = name.split("__")
        grains = (*GRAINS, *self.catalog.custom_grains)
        if parts[0] == "metric_time":
            if len(parts) != 2 or parts[1] not in grains:
                raise self._unknown(name, f"use metric_time__{'|'.join(grains)}")
            return Resolved(name, "metric_time", grain=parts[1], model=self.home)
        if len(parts) == 1:
            entity = self.home.entity(name)
            if entity is None:
                raise self._unknown(name)
            return Resolved(name, "entity", model=self.home, expr=entity.expr)
        grain = None
        if len(parts) >= 3 and parts[-1] in grains:
            grain = parts[-1]
            parts = parts[:-1]
        path, dim_name = parts[:-1], parts[-1]
        if (
            grain is None
            and dim_name in self.catalog.metrics
            and (entity := self.home.entity(path[-1])) is not None
            and (len(path) > 1 or not self._names_a_dimension(path[0], dim_name))
        ):
            # ``{{ Metric('orders', group_by=['customer']) }}``: that metric per customer; with a
            # path (``account_id__customer_id__third_hop_id``) the metric is grouped by that
            # path from its own model, and joined here on the path's last entity
            return Resolved(name, "metric", model=self.home, expr=entity.expr, metric=dim_name, entity="__".join(path))
        model, alias, hops = self._walk(name, path, dim_name)
        dimension = model.dimension(dim_name)
        if dimension is None:
            # ``customer__customer`` style: an entity reached through a path
            entity = model.entity(dim_name)
            if entity is not None and grain is None:
                return Resolved(name, "entity", model=model, alias=alias, expr=entity.expr, hops=hops)
            raise self._unknown(name)
        if grain is not None and dimension.type != "time":
            raise self._unknown(name, f"'{dim_name}' is categorical; drop the '__{grain}'")
        kind = "time_dimension" if dimension.type == "time" else "dimension"
        if kind == "time_dimension" and grain is None:
            grain = dimension.time_granularity
        return Resolved(
            name, kind, grain=grain, model=model, alias=alias, expr=dimension.expr, hops=hops, dimension=dimension
        )

    def completed(self, name: str) -> str:
        """The name with the entity path MetricFlow would find for it: a name whose path does
        not start at this model (``user__last_login_ts`` from bookings) matches every longer
        path ending in it (``listing__user__last_login_ts``); the shortest one wins, and the
        answer's column is named by it, as MetricFlow names it; two of one length are
        ambiguous. A name that resolves as written, or matches no path, is returned
        unchanged (the resolver then answers or explains)."""
        if "__" not in name:
            return name  # an entity or a metric: no path to complete
        try:
            self.resolve(name)
            return name
        except PantryError:
            pass
        frontier: list[tuple[tuple[str, ...], SemanticModel]] = [((), self.home)]
        for _ in range(2):  # MetricFlow joins at most three models deep
            found, nxt = [], []
            for prefix, model in frontier:
                for entity in model.entities:
                    path = (*prefix, entity.name)
                    candidate = "__".join((*path, name))
                    try:
                        self.resolve(candidate)
                    except PantryError:
                        pass
                    else:
                        found.append(candidate)
                    nxt.extend((path, m) for m in self.catalog.models_keyed_by(entity.name) if m is not model)
            if len(set(found)) > 1:
                raise PantryError(
                    f"'{name}' is reached from semantic model '{self.home.name}' by {len(set(found))} paths of one length",
                    hint="name the path: " + " or ".join(sorted(set(found))),
                )
            if found:
                return found[0]
            frontier = nxt
        return name

    def _names_a_dimension(self, entity: str, name: str) -> bool:
        """A dimension or entity reached through ``entity`` wins over a metric of that name."""
        return any(m.dimension(name) or m.entity(name) for m in [self.home, *self.catalog.models_keyed_by(entity)])

    def _walk(self, name: str, path: list[str], dim_name: str) -> tuple[SemanticModel, str, tuple[Hop, ...]]:
        current, alias, hops = self.home, "m0", []
        for i, entity_name in enumerate(path):
            last = i == len(path) - 1
            wanted = dim_name if last else path[i + 1]
            local = current.entity(entity_name)
            if (
                local is None
                and last
                and current.primary_entity == entity_name
                and (current.dimension(wanted) or current.entity(wanted))
            ):
                break  # ``primary_entity:`` names the model's key without an entity entry
            if local is None:
                raise self._unknown(name, f"semantic model '{current.name}' has no entity '{entity_name}'")
            if (
                last
                and local.type in ("primary", "unique", "natural")
                and (current.dimension(wanted) or current.entity(wanted))
            ):
                break  # a dimension of the model itself, named through its own key
            targets = [
                m
                for m in self.catalog.models_keyed_by(entity_name)
                if m is not current and (m.dimension(wanted) or m.entity(wanted))
            ]
            if not targets:
                fanning = [
                    m
                    for m in self.catalog.semantic_models.values()
                    if m is not current and m.entity(entity_name) and (m.dimension(wanted) or m.entity(wanted))
                ]
                if fanning:
                    raise PantryError(
                        f"'{name}' would join '{current.name}' to '{fanning[0].name}' on entity '{entity_name}', "
                        f"which is not primary or unique in '{fanning[0].name}'; the join would fan out",
                        hint=f"make '{entity_name}' primary or unique in '{fanning[0].name}', or group by a dimension of a model keyed by '{entity_name}'",
                    )
                raise self._unknown(name)
            target = targets[0]
            target_entity = target.entity(entity_name)
            to_expr = target_entity.expr if target_entity else entity_name
            new_alias = f"m{len(hops) + 1}_{target.name}"
            adjacent = _shared_partitions(current, target)
            home = tuple(p for p in _shared_partitions(self.home, target) if p not in adjacent) if hops else ()
            hops.append(Hop(entity_name, alias, local.expr, target, new_alias, to_expr, adjacent, home))
            current, alias = target, new_alias
        hops = _per_source(hops)
        return current, (hops[-1].alias if hops else alias), tuple(hops)

    def available(self) -> list[str]:
        """Names this model can group by, for suggestions."""
        names = [f"metric_time__{g}" for g in GRAINS]
        for entity in self.home.entities:
            names.append(entity.name)
            for model in [self.home] if entity.type == "primary" else self.catalog.models_keyed_by(entity.name):
                names.extend(f"{entity.name}__{d.name}" for d in model.dimensions)
        if self.home.primary and not self.home.entity(self.home.primary):
            names.extend(f"{self.home.primary}__{d.name}" for d in self.home.dimensions)
        return names

    def _unknown(self, name: str, hint: str | None = None) -> PantryError:
        return PantryError(
            f"'{name}' is not a dimension, entity or metric_time of semantic model '{self.home.name}'",
            hint=hint or did_you_mean(name, self.available()) or "run 'pantry catalog' to list dimensions",
        )
