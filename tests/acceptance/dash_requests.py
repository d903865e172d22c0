"""Dash's wire protocol as its renderer speaks it, for tests that drive the app without a browser:
the callbacks of ``/_dash-dependencies`` and the bodies of ``/_dash-update-component``."""
from __future__ import annotations


def outputs_of(output: str) -> list[dict]:
    """``"..a.x...b.y@hash.."`` (a multi-output callback id) -> ``[{id: a, property: x}, ...]``."""
    parts = output[2:-2].split("...") if output.startswith("..") else [output]
    return [dict(zip(("id", "property"), part.split(".", 1))) for part in parts]


def prop_values(tree) -> dict:
    """``{"<id>.<prop>": value}`` for every component with an id in a layout tree."""
    found = {}

    def walk(node):
        if isinstance(node, dict):
            props = node.get("props")
            if isinstance(props, dict) and isinstance(props.get("id"), str):
                found.update({f"{props['id']}.{name}": value for name, value in props.items()})
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(tree)
    return found


def find(dependencies: list[dict], inputs: list[str] | None = None, output: str | None = None) -> dict:
    """The server-side callback with exactly ``inputs`` (``id.prop``) or writing ``output``."""
    for dependency in dependencies:
        if dependency.get("clientside_function"):
            continue
        if inputs is not None and [f"{i['id']}.{i['property']}" for i in dependency["inputs"]] == inputs:
            return dependency
        if output is not None and output in (f"{o['id']}.{o['property']}" for o in outputs_of(dependency["output"])):
            return dependency
    raise LookupError(f"no callback with inputs {inputs} / output {output} in /_dash-dependencies")


def callback_body(dependency: dict, values: dict, changed: list[str] | None = None) -> dict:
    """The body that fires ``dependency`` with ``values`` by ``id.prop`` (None for any not known,
    as the renderer sends a property that is not set); ``changed`` defaults to every input. As the
    renderer does, a single output goes as one ``{id, property}``, several as a list."""
    def filled(items):
        return [{**item, "value": values.get(f"{item['id']}.{item['property']}")} for item in items]

    outputs = outputs_of(dependency["output"])
    return {"output": dependency["output"], "outputs": outputs if len(outputs) > 1 else outputs[0],
            "inputs": filled(dependency["inputs"]), "state": filled(dependency["state"]),
            "changedPropIds": changed if changed is not None else
            [f"{i['id']}.{i['property']}" for i in dependency["inputs"]]}
