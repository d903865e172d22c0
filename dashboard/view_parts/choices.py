"""The method names the views offer and accept from the URL, read from compute's registries
(never re-typed): a name is the same in the UI, the URL, the API and the cache key. The words a
user reads about each (its name in words, definition, direction, range, invariances, source)
come from the same registries: the options' text and hover, each method dropdown's info card
(Mantine's Popover: definition, source; opened by a click, a tap or the keyboard) and info line,
and the Measures page.

:mod:`compute.measures.registry` holds only name tables, so reading it loads neither torch nor
scipy in the web process. A view offering fewer names on purpose takes a subset of these.
"""
from __future__ import annotations

import math

import dash_mantine_components as dmc
from dash import Input, Output, callback, dcc, html

from compute.measures.registry import (COMPARE_METHODS, MDS_METHODS, MEASURES, RDM_METHODS,
                                       REPEATED_RDM_METHODS)

RDM_CHOICES = tuple(RDM_METHODS)  # an input RDM's dissimilarity between stimuli
COMPARE_CHOICES = tuple(COMPARE_METHODS)  # comparing two RDMs
MEASURE_CHOICES = tuple(MEASURES)  # comparing two layers' activations
MDS_CHOICES = tuple(MDS_METHODS)  # embedding stimuli or models in the plane

# Each family of methods: its registry and what its numbers are, in words.
FAMILIES = {
    "rdm": (RDM_METHODS, "Input RDMs: the dissimilarity of two stimuli's activation patterns in one layer"),
    "repeated": (REPEATED_RDM_METHODS, "Input RDMs of repeated measurements (the Python API's; "
                                       "an activation file with repeats)"),
    "compare": (COMPARE_METHODS, "Comparing two RDMs (model against model, or against a reference)"),
    "measure": (MEASURES, "Direct similarity of two layers' activations (no RDM in between)"),
    "mds": (MDS_METHODS, "Embeddings: placing stimuli or models in the plane from their dissimilarities"),
}


def range_text(bounds: tuple[float, float]) -> str:
    """A closed range as the docs write it: "[0, 1]", "[0, π/2]", "[0, ∞)"."""
    def one(x: float) -> str:
        if math.isinf(x):
            return "∞" if x > 0 else "−∞"
        return "π/2" if math.isclose(x, math.pi / 2) else f"{x:g}".replace("-", "−")
    low, high = bounds
    return f"{'(' if math.isinf(low) else '['}{one(low)}, {one(high)}{')' if math.isinf(high) else ']'}"


def facts(family: str, name: str) -> dict[str, str]:
    """What a user reads about one method: ``name``, ``title`` (its name in words),
    ``direction`` (what higher means), ``range``, ``invariances``, ``definition``, ``citation``
    (empty strings where a family has no such fact: an embedding has no range)."""
    method = FAMILIES[family][0][name]
    if family == "mds":
        return {"name": name, "title": method.title, "direction": "", "range": "", "invariances": "",
                "definition": method.description, "citation": method.citation}
    if family in ("rdm", "repeated"):
        direction = "dissimilarity: higher = more different"
    else:
        direction = f"{method.kind}: {method.direction}"
    if not method.symmetric:
        direction += "; not symmetric (the order of the two inputs matters)"
    return {"name": name, "title": method.title, "direction": direction, "range": range_text(method.range),
            "invariances": ", ".join(method.invariances) or "none (keeps magnitudes)",
            "definition": method.description, "citation": method.citation}


def options(family: str, names=None) -> list[dict]:
    """Dropdown options for a family's methods (all, or ``names`` in the registry's order): the
    name in words as the text, the definition on hover, the registry's name as the value."""
    table = FAMILIES[family][0]
    return [{"label": table[n].title, "value": n, "title": facts(family, n)["definition"]}
            for n in table if names is None or n in names]


def info_text(family: str, name) -> str:
    """The info line under a method's dropdown: its name, direction, range and invariances (its
    definition and source are on its card, :func:`card`)."""
    if not isinstance(name, str) or name not in FAMILIES[family][0]:
        return ""
    said = facts(family, name)
    parts = [f"{said['title']} ({name})", said["direction"], said["range"] and f"range {said['range']}",
             said["invariances"] and f"unchanged by: {said['invariances']}"]
    return ". ".join(part for part in parts if part) + "."


def card(family: str, name) -> list:
    """A method's info card (the Popover on the ⓘ beside its dropdown's label): its name in words,
    its one-line definition and its source."""
    if not isinstance(name, str) or name not in FAMILIES[family][0]:
        return [dmc.Text("No method chosen.", size="sm")]
    said = facts(family, name)
    return [dmc.Text(f"{said['title']} ({name})", fw=600, size="sm"), dmc.Text(said["definition"], size="sm"),
            dmc.Text(f"source: {said['citation']}", size="xs", c="dimmed")]


def method_dropdown(component_id: str, label: str, family: str, value, names=None, none: str | None = None,
                    **kwargs) -> html.Div:
    """A labelled dropdown of a family's methods with the chosen one's info card on the ⓘ beside
    the label (id ``<component_id>-about``, the card's content ``<component_id>-card``) and its
    info line below (id ``<component_id>-info``), both kept current by :func:`register_info`;
    ``none``: the text of a first option "none" (no method), where choosing none is allowed.

    The ⓘ is a button: a click, a tap, Enter or Space opens its card (Mantine's Popover; a
    HoverCard opens on a mouse's hover only) and again, Escape or a click elsewhere closes it."""
    first = [{"label": none, "value": "none"}] if none else []
    about = dmc.Popover(
        [dmc.PopoverTarget(dmc.ActionIcon("i", id=f"{component_id}-about", variant="light", size="xs", radius="xl",
                                          **{"aria-label": f"What the chosen {label.lower()} is"})),
         dmc.PopoverDropdown(dmc.Stack(card(family, value), id=f"{component_id}-card", gap=4))],
        width=340, shadow="md", withArrow=True, position="right-start", trapFocus=True, returnFocus=True)
    return html.Div(
        [dmc.Group([html.Label(label, htmlFor=component_id), about], gap=6, wrap="nowrap", align="center"),
         dcc.Dropdown(id=component_id, options=first + options(family, names), value=value, clearable=False,
                      **kwargs),
         html.P(info_text(family, value), id=f"{component_id}-info", className="hint measure-info")],
        className="control",
    )


def register_info(component_id: str, family: str) -> None:
    """The callback that keeps a :func:`method_dropdown`'s info line and card on the chosen method."""
    @callback(Output(f"{component_id}-info", "children"), Output(f"{component_id}-card", "children"),
              Input(component_id, "value"), prevent_initial_call=True)
    def _info(name):
        return info_text(family, name), card(family, name)


def method_words(family: str, name: str) -> str:
    """A method's name in words for a figure's text (the registry's title: "Linear CKA", not
    "cka_linear"); the code name stays in URLs, snippets and info lines."""
    table = {**RDM_METHODS, **REPEATED_RDM_METHODS} if family == "rdm" else FAMILIES[family][0]
    return table[name].title


def rdm_scale_words(method: str) -> str:
    """An input RDM's dissimilarity in words with its direction, for a figure's subtitle
    (e.g. "1 - Pearson correlation: higher = more different")."""
    return f"{RDM_METHODS[method].description.split(' between ')[0]}: higher = more different"


def rdm_scale_title(method: str) -> str:
    """An input RDM's colour-bar title: the registry's words for it on narrow lines ("1 − Pearson<br>
    correlation<br>(dissimilarity)"); the direction is in the figure's subtitle."""
    *head, last = method_words("rdm", method).split(" ")
    return f"{' '.join(head)}<br>{last}<br>(dissimilarity)" if head else f"{last}<br>(dissimilarity)"
