"""The AsyncAPI 3.0 document of every topic, built from the payload models.

``python -m shared.asyncapi`` rewrites ``docs/asyncapi.yaml``; a test fails when
the committed document and the models disagree.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from shared.events import (
    ASYNCAPI_ID,
    CONTENT_TYPE,
    PAYLOADS,
    CloudEvent,
    dataschema,
    dlq_topic,
)

DOC = Path(__file__).resolve().parents[1] / "docs" / "asyncapi.yaml"

DLQ_HEADERS = {
    "type": "object",
    "description": (
        "The original message's headers (less any `ce_` header: the value is a "
        "structured-mode event) plus where and why it failed."
    ),
    "properties": {
        "dlq.reason": {
            "type": "string",
            "enum": [
                "invalid_cloudevent",
                "unexpected_type",
                "invalid_payload",
                "rejected",
                "handler_error",
            ],
        },
        "dlq.detail": {"type": "string"},
        "dlq.origin.topic": {"type": "string"},
        "dlq.origin.partition": {"type": "string"},
        "dlq.origin.offset": {"type": "string"},
        "dlq.consumer.group": {"type": "string"},
        "dlq.at": {"type": "string", "format": "date-time"},
    },
}


# An event's Kafka headers (shared/events.py kafka_headers): structured mode, so the
# content type and no `ce_` header, which would make a CloudEvents reader take the message
# for binary mode (Kafka protocol binding).
EVENT_HEADERS = {
    "type": "object",
    "description": "Structured mode: the content type, and no `ce_` header.",
    "properties": {"content-type": {"const": CONTENT_TYPE}},
    "required": ["content-type"],
    "propertyNames": {"not": {"pattern": "^[Cc][Ee]_"}},
}


def _schema(model: type[Any]) -> dict[str, Any]:
    schema: dict[str, Any] = model.model_json_schema(ref_template="#/components/schemas/{model}")
    return schema


def _message(topic: str, name: str, model: type) -> dict[str, Any]:
    """A topic's message: the CloudEvent envelope with ``type`` the topic and ``data``
    the payload's schema, keyed by patient id."""
    return {
        "name": topic,
        "title": name,
        "summary": (model.__doc__ or "").strip().splitlines()[0],
        "contentType": CONTENT_TYPE,
        "headers": {"$ref": "#/components/schemas/KafkaHeaders"},
        "payload": {
            "allOf": [
                {"$ref": "#/components/schemas/CloudEvent"},
                {
                    "type": "object",
                    "properties": {
                        "type": {"const": topic},
                        "dataschema": {"const": dataschema(model)},
                        "data": {"$ref": f"#/components/schemas/{name}"},
                    },
                },
            ]
        },
        "bindings": {"kafka": {"key": {"type": "string", "description": "patient_id"}}},
    }


def build() -> dict[str, Any]:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {"CloudEvent": _schema(CloudEvent), "KafkaHeaders": EVENT_HEADERS}
    for topic, model in PAYLOADS.items():
        name = model.__name__
        payload = _schema(model)
        for sub, defn in payload.pop("$defs", {}).items():
            schemas[sub] = defn
        schemas[name] = payload
        messages[name] = _message(topic, name, model)
        cid = topic.replace(".", "_")
        channels[cid] = {
            "address": topic,
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
        }
        channels[f"{cid}_dlq"] = {
            "address": dlq_topic(topic),
            "description": f"Messages of {topic} that a consumer could not apply.",
            "messages": {"DeadLetter": {"$ref": "#/components/messages/DeadLetter"}},
        }
        operations[f"publish_{cid}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{cid}"},
        }
    messages["DeadLetter"] = {
        "name": "dead_letter",
        "summary": "The original bytes, unchanged, with the reason in headers.",
        "headers": DLQ_HEADERS,
        "payload": {"type": "string", "description": "the original message value"},
    }
    return {
        "asyncapi": "3.0.0",
        # every event's ``dataschema`` is this id + "#/components/schemas/<Model>"
        "id": ASYNCAPI_ID,
        "info": {
            "title": "Interval events",
            # its major is CONTRACT_VERSION (the ``v1`` of ``id``); an additive change
            # (docs/events.md) may move the minor, never the id
            "version": "1.0.0",
            "description": (
                "CloudEvents 1.0 in structured JSON mode, keyed by patient_id; `type` is "
                "the topic, `source` the emitting service (`urn:interval:<service>`), "
                "`subject` the patient id, `dataschema` the payload's component in this "
                "document (`<id>#/components/schemas/<Model>`). Messages carry no `ce_` "
                "header. No event carries a name, birth date, "
                "phone, e-mail or free-text note. Schemas are what producers send (no "
                "unknown field); consumers ignore fields and extension attributes they do "
                "not know yet. How an event may change: docs/events.md."
            ),
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {"local": {"host": "127.0.0.1:9092", "protocol": "kafka"}},
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def main() -> int:
    import yaml  # a development dependency: only regenerating the document needs it

    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(yaml.safe_dump(build(), sort_keys=False, width=100))
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
