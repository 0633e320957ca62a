"""Validate a KubeRay or Kubernetes manifest offline: KubeRay's own fields (kuberay_v1.schema.yaml) around
the Kubernetes types of the `kubernetes` client, whose pydantic models (generated from the Kubernetes
OpenAPI spec, unknown fields forbidden) give their JSON Schema."""

from __future__ import annotations

import functools
from pathlib import Path

import jsonschema
import yaml
from kubernetes.client import models
from pydantic.json_schema import models_json_schema

KUBERAY_SCHEMA = Path(__file__).with_name("kuberay_v1.schema.yaml")
# The Kubernetes types KubeRay's fields refer to, and the kinds validated directly.
KUBERNETES_TYPES = [
    models.V1PodTemplateSpec, models.V1Service, models.V1ServiceAccount, models.V1ObjectMeta, models.V1EnvVar,
    models.V1EnvFromSource, models.V1VolumeMount, models.V1ResourceRequirements, models.V1SecurityContext,
]
KINDS = {"RayCluster": "RayCluster", "RayJob": "RayJob", "ServiceAccount": "V1ServiceAccount"}
# Keywords that only annotate a schema; dropped to keep error messages short.
ANNOTATIONS = {"description", "title", "default", "examples"}


def _tidy(schema):
    """Drop annotations and the `null` alternative pydantic gives every optional field: a manifest leaves
    a field out rather than setting it to null, and errors then name the field instead of an anyOf."""
    if isinstance(schema, list):
        return [_tidy(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    tidy = {}
    for key, value in schema.items():
        if key in ANNOTATIONS:
            continue
        if key in ("properties", "$defs", "patternProperties"):
            tidy[key] = {name: _tidy(item) for name, item in value.items()}
        else:
            tidy[key] = _tidy(value)
    alternatives = tidy.get("anyOf")
    if alternatives and {"type": "null"} in alternatives:
        rest = [item for item in alternatives if item != {"type": "null"}]
        del tidy["anyOf"]
        if len(rest) == 1:
            tidy.update(rest[0])
        else:
            tidy["anyOf"] = rest
    return tidy


def _kubernetes_defs() -> dict:
    _, schema = models_json_schema([(model, "validation") for model in KUBERNETES_TYPES], by_alias=True,
                                   ref_template="#/$defs/{model}")
    defs = _tidy(schema["$defs"])
    # Quantities (cpu: 4, nvidia.com/gpu: "1", memory: 16Gi) are int-or-string in Kubernetes; the client
    # types them as strings only.
    quantity = {"type": ["string", "integer", "number"]}
    for field in ("limits", "requests"):
        defs["V1ResourceRequirements"]["properties"][field]["additionalProperties"] = quantity
    return defs


@functools.cache
def _schema() -> dict:
    schema = yaml.safe_load(KUBERAY_SCHEMA.read_text())
    kubernetes = _kubernetes_defs()
    assert not set(kubernetes) & set(schema["$defs"]), "KubeRay and Kubernetes type names collide"
    schema["$defs"].update(kubernetes)
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


@functools.cache
def _validator(kind: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator({**_schema(), "$ref": f"#/$defs/{KINDS[kind]}"})


def validation_errors(manifest: dict) -> list[str]:
    """`<Kind> <name>: <field path>: <message>` for every schema violation, deepest paths first."""
    kind = manifest.get("kind")
    if kind not in KINDS:
        return [f"kind {kind!r}: no schema here (expected one of {sorted(KINDS)})"]
    name = (manifest.get("metadata") or {}).get("name") or (manifest.get("metadata") or {}).get("generateName")
    errors = sorted(_validator(kind).iter_errors(manifest), key=lambda error: -len(error.absolute_path))
    return [f"{kind} {name}: {'.'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
            for error in errors]
