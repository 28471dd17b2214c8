"""Home Assistant MQTT discovery: one device per kiosk, so a staff dashboard needs no hand configuration.

Entities: last emotion, emotion→story latency and stories today (sensors), child present (binary sensor),
emotion model version (update entity), pause (switch) and reload models (button). Config topics are
retained and sent again whenever Home Assistant announces itself on ``<prefix>/status``; the command
topics they name are the kiosk's own ``cmd/<action>/set``, which are never retained.

Each entity proposes its entity id with ``default_entity_id`` (``<domain>.<object id>``): ``object_id`` was
deprecated in Home Assistant 2025.10 and is dropped in 2026.4. The daily story count is
``total_increasing``: it only grows through the day and its fall to 0 at midnight is read as a reset.
"""

from __future__ import annotations

import json

from kiosk.events import Command, Topics

ORIGIN = {"name": "emotionai-kiosk"}


def _command(value: str) -> str:
    """The exact payload Home Assistant sends: a valid kiosk ``Command``."""
    return Command(value=value).model_dump_json(include={"value"})


def discovery_messages(topics: Topics, prefix: str = "homeassistant", sw_version: str = "") -> list[tuple[str, bytes]]:
    """(config topic, payload) for every entity of this kiosk."""
    kid = topics.kiosk_id
    node = f"emotionai_{kid}"
    device = {
        "identifiers": [node],
        "name": f"EmotionAI kiosk {kid}",
        "manufacturer": "EmotionAI",
        "model": "Playroom story kiosk",
        "sw_version": sw_version,
    }
    availability = {
        "availability_topic": topics.status("dashboard"),
        "availability_template": "{{ 'online' if value_json.state == 'online' else 'offline' }}",  # stopped too
        "payload_available": "online",
        "payload_not_available": "offline",
    }
    summary = topics.summary
    entities: list[tuple[str, str, dict]] = [
        (
            "sensor",
            "last_emotion",
            {
                "name": "Last emotion",
                "state_topic": summary,
                "value_template": "{{ value_json.last_emotion }}",
                "icon": "mdi:emoticon-outline",
            },
        ),
        (
            "sensor",
            "story_latency",
            {
                "name": "Emotion to story latency",
                "state_topic": summary,
                "unit_of_measurement": "ms",
                "device_class": "duration",
                "state_class": "measurement",
                "value_template": "{{ value_json.latency_ms.emotion_to_story_p50 | default(none) }}",
            },
        ),
        (
            "sensor",
            "stories_today",
            {
                "name": "Stories today",
                "state_topic": summary,
                "state_class": "total_increasing",
                "value_template": "{{ value_json.stories_today }}",
                "icon": "mdi:book-open-page-variant",
            },
        ),
        (
            "binary_sensor",
            "child_present",
            {
                "name": "Child present",
                "state_topic": summary,
                "device_class": "occupancy",
                "value_template": "{{ 'ON' if value_json.child_present else 'OFF' }}",
            },
        ),
        (
            "update",
            "emotion_model",
            {
                "name": "Emotion model",
                "state_topic": topics.update("emotion"),
                "entity_category": "config",
            },
        ),
        (
            "switch",
            "pause",
            {
                "name": "Pause kiosk",
                "command_topic": topics.command("pause"),
                "state_topic": summary,
                "value_template": "{{ 'ON' if value_json.paused else 'OFF' }}",
                "state_on": "ON",
                "state_off": "OFF",
                "payload_on": _command("ON"),
                "payload_off": _command("OFF"),
                "retain": False,
                "icon": "mdi:pause",
            },
        ),
        (
            "button",
            "reload_models",
            {
                "name": "Reload models",
                "command_topic": topics.command("reload-models"),
                "payload_press": _command("PRESS"),
                "retain": False,
                "entity_category": "config",
            },
        ),
    ]
    messages = []
    for component, object_id, config in entities:
        payload = (
            {
                "unique_id": f"{node}_{object_id}",
                "default_entity_id": f"{component}.{node}_{object_id}",
                "device": device,
                "origin": ORIGIN,
            }
            | availability
            | config
        )
        messages.append((f"{prefix}/{component}/{node}/{object_id}/config", json.dumps(payload).encode()))
    return messages


def update_state(version: str | None, name: str | None) -> bytes:
    """State of the update entity: what runs now (a kiosk cannot know of newer models; deploy brings them)."""
    return json.dumps({"installed_version": version, "latest_version": version, "title": name}).encode()
