"""The selection every view works on: a stimulus set, the models (filtered by tag or picked by
name), the pooling of activations and the tag that groups models in figures.

It is chosen in the left panel (:func:`panel`; a page shows only the parts its view reads, the
view's ``SELECTION``) and kept in the URL beside the view's own state, under the keys of
:data:`DEFAULTS`:

- ``set``: the stimulus set, a name of the server's registry (:mod:`compute.sources.stimulus_names`:
  never a path); ``pooling``: how activations are pooled (``none``, ``avg``, ``proj:<k>``);
- ``where``: tag filters ``tag:value`` joined by ``;`` (values of one tag are alternatives, tags
  must all match), e.g. ``family:cnn;group:trained``;
- ``models``: model names joined by ``,``; empty means every model that passes the filters;
- ``group``: the tag whose values give models their symbol (MDS) or group.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import dash_mantine_components as dmc
from dash import Input, Output, State, callback, dcc, html, no_update

from dashboard import services, url_codec
from dashboard.widgets import dropdown, model_options

DEFAULTS = {"set": "digits", "where": "", "models": "", "group": "family", "pooling": "none"}
POOLING_CHOICES = ("none", "avg", "proj:64", "proj:256")
FILTER_TAGS = ("family", "group", "width", "seed", "epochs", "labels", "series", "source")
GROUP_TAGS = ("family", "group", "width", "seed", "epochs", "labels", "architecture", "source")
_ID = "selection"


def tag_value(model, tag: str) -> str:
    """A model's value of ``tag`` as text; ``family`` falls back to the architecture and
    ``source``/``architecture`` are the model's own fields."""
    if tag in ("source", "architecture"):
        return str(getattr(model, tag))
    if tag == "family":
        return str(model.tags.get("family", model.architecture))
    value = model.tags.get(tag)
    return "" if value is None else str(value)


def ordered(models) -> list:
    """Models in the order every figure shows them: by accuracy (unknown last), then name."""
    return sorted(models, key=lambda m: (m.accuracy is None, m.accuracy or 0.0, m.name))


def _merit(model) -> tuple:
    """Sorts the most accurate first (unknown accuracy last, then by name)."""
    return (model.accuracy is None, -(model.accuracy or 0.0), model.name)


def best_model(models):
    """The default model of a view: the most accurate (by name among equals)."""
    return min(models, key=_merit)


def most_accurate(models, n: int) -> list:
    """The ``n`` most accurate of ``models`` (unknown accuracy last), in the figures' order."""
    return ordered(sorted(models, key=_merit)[:n])


def parse_where(text: str) -> dict[str, set[str]]:
    """``"family:cnn;family:mlp;group:trained"`` -> ``{"family": {"cnn", "mlp"}, "group": {"trained"}}``."""
    filters: dict[str, set[str]] = {}
    for item in (text or "").split(";"):
        tag, sep, value = item.partition(":")
        if sep and tag:
            filters.setdefault(tag, set()).add(value)
    return filters


def matches(model, filters: dict[str, set[str]]) -> bool:
    return all(tag_value(model, tag) in values for tag, values in filters.items())


def known_set(name) -> bool:
    """Whether ``name`` is a stimulus set of the server's registry (no image is read)."""
    from compute.sources.stimuli import is_listed

    return name == DEFAULTS["set"] or is_listed(name)


@dataclass(frozen=True)
class Selection:
    """One selection, from the URL's strings (see the module docstring); unknown values fall back
    to the defaults when read by :meth:`from_url_params` (a stimulus set the registry does not
    list among them: whatever the client sends, no other folder is read)."""

    stimulus_set: str = DEFAULTS["set"]
    where: str = ""
    names: tuple[str, ...] = ()
    group: str = DEFAULTS["group"]
    pooling: str = DEFAULTS["pooling"]

    @classmethod
    def from_url_params(cls, params: dict | None) -> "Selection":
        """The selection that :meth:`url_params` (or the URL's keys of :data:`DEFAULTS`) describe."""
        params = {**DEFAULTS, **(params or {})}
        names = tuple(n for n in str(params["models"]).split(",") if n)
        pooling = params["pooling"] if params["pooling"] in POOLING_CHOICES else DEFAULTS["pooling"]
        group = params["group"] if params["group"] in GROUP_TAGS else DEFAULTS["group"]
        stimulus_set = params["set"] if known_set(params["set"]) else DEFAULTS["set"]
        return cls(stimulus_set, str(params["where"] or ""), names, group, pooling)

    @classmethod
    def from_store(cls, data: dict | None) -> "Selection":
        """The selection a ``selection`` store holds; ``UnknownStimulusSet`` when it names a set
        the registry does not list (the panel writes only listed ones: the store was crafted)."""
        from compute.sources.stimulus_names import UnknownStimulusSet

        if isinstance(data, dict) and "set" in data and not known_set(data["set"]):
            raise UnknownStimulusSet()
        return cls.from_url_params(data if isinstance(data, dict) else None)

    @classmethod
    def from_search(cls, search: str | None) -> "Selection":
        return cls.from_url_params(url_codec.decode(search, DEFAULTS))

    def url_params(self) -> dict[str, str]:
        """The selection as the URL's keys and strings (the ``selection`` store and a job's context hold it)."""
        return {"set": self.stimulus_set, "where": self.where, "models": ",".join(self.names),
                "group": self.group, "pooling": self.pooling}

    def search(self) -> str:
        """The selection's part of a query string (only what differs from the defaults)."""
        return url_codec.encode(self.url_params(), DEFAULTS)

    @property
    def stimuli(self):
        return services.stimuli(self.stimulus_set)

    @cached_property
    def available(self) -> list:
        """Every model of the stimulus set that passes the tag filters, ordered."""
        filters = parse_where(self.where)
        return ordered(m for m in services.models(self.stimulus_set) if matches(m, filters))

    @cached_property
    def models(self) -> list:
        """The selected models, ordered by accuracy: the named ones (those that exist and pass
        the filters), or all that pass the filters when none is named."""
        if not self.names:
            return self.available
        wanted = set(self.names)
        return [m for m in self.available if m.name in wanted]

    @property
    def choices(self) -> list:
        """Models a single-model control offers: the selected ones, or every model of the set
        when the filters leave none (a control is never empty)."""
        return self.models or ordered(services.models(self.stimulus_set))

    @cached_property
    def by_key(self) -> dict:
        """Every model of the stimulus set by weights key (to read a job's models back)."""
        return {m.key: m for m in services.models(self.stimulus_set)}

    def named(self, name: str):
        """The model called ``name`` among the stimulus set's models (selected or not)."""
        return services.model_named(name, self.stimulus_set)

    def group_of(self, model) -> str:
        return tag_value(model, self.group) or "(none)"

    def describe(self) -> str:
        """One line for hints: how many models, on which stimuli."""
        return f"{len(self.models)} models; stimuli: {self.stimulus_set} ({len(self.stimuli)} images)"


def need_models(selection: Selection, at_least: int) -> list:
    """The selected models, or a ``ValueError`` saying how to select enough of them."""
    models = selection.models
    if len(models) < at_least:
        raise ValueError(f"this view needs at least {at_least} models and the selection has {len(models)}; "
                         "widen the filters or pick more models in the left panel")
    return models


def filter_options(models) -> list[dict]:
    """``tag:value`` options for every filter tag value the models have, with counts."""
    counts: dict[tuple[str, str], int] = {}
    for model in models:
        for tag in FILTER_TAGS:
            value = tag_value(model, tag)
            if value:
                counts[(tag, value)] = counts.get((tag, value), 0) + 1
    return [{"label": f"{tag}: {value} ({count})", "value": f"{tag}:{value}"}
            for (tag, value), count in sorted(counts.items(), key=lambda item: (FILTER_TAGS.index(item[0][0]),
                                                                                  _natural(item[0][1])))]


def _natural(value: str):
    return (0, float(value), "") if value.replace(".", "", 1).lstrip("-").isdigit() else (1, 0.0, value)


def summary(selection: Selection) -> str:
    models = selection.models
    known = [m.accuracy for m in models if m.accuracy is not None]
    accuracy = (f", top-1 accuracy on {selection.stimulus_set} {100 * min(known):.1f}–{100 * max(known):.1f} % "
                "(the % beside each model)") if known else ""
    return f"{len(models)} of {len(services.models(selection.stimulus_set))} models selected{accuracy}"


def _stimulus_sets() -> list[str]:
    from compute.sources.stimuli import list_stimulus_sets

    return list_stimulus_sets()


def ignored_in_link(search: str | None) -> list[tuple[str, str, str]]:
    """The link's selection values that :meth:`Selection.from_search` ignores, as (key, value,
    why): an unknown stimulus set, pooling or grouping, models the stimulus set has not."""
    given = dict(url_codec.parse(search))
    kept = Selection.from_search(search)
    ignored = [(key, given[key], why) for key, value, why in (
        ("set", kept.stimulus_set, "no such stimulus set"), ("pooling", kept.pooling, "no such pooling"),
        ("group", kept.group, "no such tag")) if key in given and given[key] != value]
    known = {m.name for m in services.models(kept.stimulus_set)}
    missing = [name for name in kept.names if name not in known]
    if missing:
        ignored.append(("models", ",".join(missing), "no such models"))
    return ignored


def panel() -> html.Aside:
    """The left panel: stimulus set, tag filters, models, grouping, pooling; its values are
    set from the URL by :func:`_from_url` and gathered into the ``selection`` store."""
    default = Selection()
    everything = services.models(default.stimulus_set)
    controls = {
        "set": [dropdown(f"{_ID}-set", "Stimulus set", _stimulus_sets(), default.stimulus_set)],
        "where": [dropdown(f"{_ID}-where", "Filter models by tag", filter_options(everything), [], multi=True,
                           clearable=True, placeholder="all models")],
        "models": [dropdown(f"{_ID}-models", "Models", model_options(default.available), [], multi=True,
                            clearable=True, searchable=True, placeholder="all that pass the filters"),
                   html.P(summary(default), id=f"{_ID}-summary", className="hint")],
        "group": [dropdown(f"{_ID}-group", "Group models by", GROUP_TAGS, default.group)],
        "pooling": [dropdown(f"{_ID}-pooling", "Pooling of activations", POOLING_CHOICES, default.pooling)],
    }
    return html.Aside(
        dmc.Paper([
            html.H2("Selection"),
            *(html.Div(parts, id=f"{_ID}-{name}-part") for name, parts in controls.items()),
            dcc.Store(id=_ID),
            dcc.Store(id=REGISTRY_CHANGED),
        ], className="view-panel", w={"base": "100%", "sm": 250}, p="md", radius="md", shadow="xs", mt="md"),
        id=PANEL, className="sidebar",
    )


_CONTROLS = ("set", "where", "models", "group", "pooling")
PANEL = f"{_ID}-panel"
# What a view may read of the selection (its ``SELECTION``, a tuple of these): the panel shows
# only those parts, and nothing on a page that reads none.
EVERY_PART = _CONTROLS


def hidden_parts(reads) -> tuple[bool, ...]:
    """The ``hidden`` flags of the panel and of each of its parts (:data:`EVERY_PART` order) on a
    page whose view reads the parts ``reads`` (a view's ``SELECTION``)."""
    unknown = set(reads) - set(EVERY_PART)
    if unknown:
        raise ValueError(f"no selection parts {sorted(unknown)}; the parts are {EVERY_PART}")
    return (not reads, *(part not in reads for part in EVERY_PART))


def visibility_outputs() -> list[Output]:
    """The outputs :func:`hidden_parts` fills: the panel's and each part's ``hidden``."""
    return [Output(PANEL, "hidden"), *(Output(f"{_ID}-{name}-part", "hidden") for name in EVERY_PART)]
# Written by whatever adds a model or a stimulus set (an upload): the panel then lists it.
REGISTRY_CHANGED = "registry-changed"


def control_values(selection: Selection) -> dict:
    """The panel's component values for a selection (multi-selects as lists)."""
    return {"set": selection.stimulus_set, "where": [w for w in selection.where.split(";") if w],
            "models": list(selection.names), "group": selection.group, "pooling": selection.pooling}


def from_controls(stimulus_set, where, names, group, pooling) -> Selection:
    return Selection.from_url_params({"set": stimulus_set, "where": ";".join(where or []),
                                 "models": ",".join(names or []), "group": group, "pooling": pooling})


@callback(
    *[Output(f"{_ID}-{name}", "value") for name in _CONTROLS],
    Input("url", "search"),
    *[State(f"{_ID}-{name}", "value") for name in _CONTROLS],
)
def _from_url(search, *current):
    """A link's selection into the panel; a link without selection keys (the navigation bar's)
    keeps the panel as it is. Unchanged values are not written, so nothing recomputes."""
    given = {k for k, _ in url_codec.parse(search)} & set(DEFAULTS)
    if not given:
        return (no_update,) * len(_CONTROLS)
    wanted = control_values(Selection.from_search(search))
    return tuple(no_update if wanted[name] == value else wanted[name] for name, value in zip(_CONTROLS, current))


@callback(
    Output(_ID, "data"),
    Output(f"{_ID}-models", "options"),
    Output(f"{_ID}-where", "options"),
    Output(f"{_ID}-summary", "children"),
    Output(f"{_ID}-set", "options"),
    *[Input(f"{_ID}-{name}", "value") for name in _CONTROLS],
    Input(REGISTRY_CHANGED, "data"),
    State(_ID, "data"),
)
def _gather(stimulus_set, where, names, group, pooling, _changed, stored):
    """The panel's values into the ``selection`` store (only when they changed: every view
    redraws on it), with the model options that pass the filters, the summary line and the
    stimulus sets; again when the registry changed (an upload added a model or a set)."""
    selection = from_controls(stimulus_set, where, names, group, pooling)
    data = selection.url_params()
    everything = services.models(selection.stimulus_set)
    return (no_update if data == stored else data, model_options(selection.available),
            filter_options(everything), summary(selection), _stimulus_sets())
