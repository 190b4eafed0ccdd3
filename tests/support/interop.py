"""Our events as an outside consumer reads them: the official CloudEvents Python SDK
(``cloudevents``, Kafka protocol binding) and a CloudEvents 1.0 JSON Schema.

``check_message`` is the whole check of one Kafka message of ours: no ``ce_`` header (a
reader that sees one takes the message for binary mode), the SDK's ``from_kafka`` reads
it as structured mode to the same event as ``from_structured``, the JSON validates
against the CloudEvents schema, ``type`` is the topic, ``source`` the producing service's
absolute URI, ``subject`` the Kafka key and ``dataschema`` the payload's component in
docs/asyncapi.yaml. The unit test runs it on an example of every event type, the
integration test on every event the running services published.

The schema, ``cloudevents-1.0.schema.json`` beside this file, is NOT the official file:
it is written from the CloudEvents 1.0 specification's attribute rules (its ``$comment``
says which and why).
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings.kafka import KafkaMessage, from_kafka, from_structured
from cloudevents.core.formats.json import JSONFormat

from services.alerts.settings import SOURCE as ALERTS
from services.intake.settings import SOURCE as INTAKE
from services.scheduling.settings import SOURCE as SCHEDULING
from shared import asyncapi
from shared.events import (
    BINARY_MODE_HEADER_PREFIX,
    CONTENT_TYPE,
    PAYLOADS,
    SOURCE_PREFIX,
    dataschema,
)

SCHEMA = Path(__file__).with_name("cloudevents-1.0.schema.json")
ARCHITECTURE = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"
SOURCES = {"intake": INTAKE, "scheduling": SCHEDULING, "alerts": ALERTS}


@cache
def validator() -> jsonschema.Draft7Validator:
    """The CloudEvents 1.0 schema, with its formats (uri, uri-reference, date-time)
    checked: jsonschema checks a format only when its package is installed
    (rfc3986-validator, rfc3339-validator), which test_cloudevents_interop.py proves."""
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(
        schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    )


@cache
def producers() -> dict[str, str]:
    """Topic -> the service that produces it, from docs/architecture.md's table of topics
    (the first word of its "Produced by" cell)."""
    text = ARCHITECTURE.read_text().split("| Topic | Produced by | Consumed by |", 1)[1]
    rows = {}
    for line in text.splitlines()[2:]:
        if not line.startswith("|"):
            break
        m = re.match(r"^\| `([a-z.]+)` \| ([a-z]+)\b", line)
        assert m, line
        rows[m.group(1)] = m.group(2)
    return rows


@cache
def asyncapi_document() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(asyncapi.DOC.read_text())
    return doc


def resolve_dataschema(uri: str) -> dict[str, Any]:
    """What ``uri`` points at in the committed docs/asyncapi.yaml: its base is the
    document's ``id``, its fragment a JSON pointer into it (an AssertionError if not)."""
    doc = asyncapi_document()
    base, sep, pointer = uri.partition("#")
    assert sep, f"{uri} has no fragment"
    assert base == doc["id"], f"{uri} is not a URI into the AsyncAPI document"
    node: Any = doc
    for part in pointer.removeprefix("/").split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict), f"{uri}: {part!r} is not in an object"
        assert part in node, f"{uri}: no {part!r} in the document"
        node = node[part]
    assert isinstance(node, dict)
    return node


def read_with_sdk(key: bytes | None, value: bytes, headers: dict[str, bytes]) -> BaseCloudEvent:
    """The message as the SDK's ``from_kafka`` reads it, which must be structured mode:
    the same event ``from_structured`` reads."""
    message = KafkaMessage(headers=headers, key=key, value=value)
    binary = [h for h in headers if h.lower().startswith(BINARY_MODE_HEADER_PREFIX)]
    assert not binary, f"structured mode with binary-mode headers {binary}"
    event = from_kafka(message, JSONFormat())
    structured = from_structured(message, JSONFormat())
    assert event.get_attributes() == structured.get_attributes()
    assert event.get_data() == structured.get_data()
    return event


def check_message(topic: str, key: bytes | None, value: bytes, headers: dict[str, bytes]) -> None:
    """The whole interop check of one message of ours on ``topic`` (module docstring)."""
    assert headers.get("content-type") == CONTENT_TYPE.encode(), headers
    jsonschema.validate(headers_as_text(headers), asyncapi.EVENT_HEADERS)
    wire = json.loads(value)
    errors = sorted(validator().iter_errors(wire), key=str)
    assert not errors, f"{topic}: not a CloudEvent: {[e.message for e in errors]}"

    event = read_with_sdk(key, value, headers)
    attrs = event.get_attributes()
    assert attrs["specversion"] == "1.0"
    assert attrs["id"] == wire["id"]
    assert attrs["type"] == topic
    service = producers()[topic]
    assert attrs["source"] == SOURCES[service] == SOURCE_PREFIX + service
    assert key is not None
    assert attrs["subject"] == key.decode() == attrs["partitionkey"]
    if "patient_id" in wire["data"]:
        assert attrs["subject"] == wire["data"]["patient_id"]
    assert attrs["datacontenttype"] == "application/json"
    assert attrs["time"].tzinfo is not None
    assert attrs["dataschema"] == dataschema(PAYLOADS[topic])
    component = resolve_dataschema(attrs["dataschema"])
    assert component["title"] == PAYLOADS[topic].__name__
    assert event.get_data() == wire["data"]


def headers_as_text(headers: dict[str, bytes]) -> dict[str, str]:
    return {k: v.decode() for k, v in headers.items()}
