"""The OpenAPI 3.1 document served at /api/v1/openapi.json."""

from __future__ import annotations

from functools import cache
from typing import Any

import bot


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


@cache
def openapi_document() -> dict[str, Any]:
    from bot.channels.api import MessageIn

    message_in = MessageIn.model_json_schema()
    message_in.pop("title", None)
    message_in["description"] = "Exactly one of `text` or `button`."
    bad = {
        "400": _error("The body is not valid JSON."),
        "401": _error("Missing or wrong bearer token (when COACH_API_TOKEN is set)."),
        "413": _error("The body is larger than 64 KiB."),
        "415": _error("The body is not application/json."),
        "422": _error("A field is missing, unknown, of the wrong type or too long."),
    }
    user = {
        "name": "user",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "minLength": 1, "maxLength": 128},
        "description": "The person's external id on the web channel.",
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Coach API",
            "version": bot.__version__,
            "description": "Talk to the learning coach, and export or erase a person's data.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": {
            "/api/v1/messages": {
                "post": {
                    "summary": "Send a message as a user and get the coach's replies",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": message_in}},
                    },
                    "responses": {
                        "200": {
                            "description": "The replies, and what input is expected next. "
                            "A repeated message_id answers the stored replies.",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/TurnResult"}
                                }
                            },
                        },
                        **bad,
                    },
                }
            },
            "/api/v1/users/{user}/export": {
                "get": {
                    "summary": "Everything stored about a person",
                    "parameters": [user],
                    "responses": {
                        "200": {
                            "description": "The export, schema coach.export/v1.",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Export"}
                                }
                            },
                        },
                        "401": bad["401"],
                        "404": _error("No such user."),
                    },
                }
            },
            "/api/v1/users/{user}": {
                "delete": {
                    "summary": "Erase a person's personal data",
                    "parameters": [user],
                    "responses": {
                        "204": {"description": "Erased."},
                        "401": bad["401"],
                        "404": _error("No such user."),
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "properties": {
                                "code": {"type": "string"},
                                "message": {"type": "string"},
                            },
                        }
                    },
                },
                "Button": {
                    "type": "object",
                    "required": ["label", "value"],
                    "properties": {"label": {"type": "string"}, "value": {"type": "string"}},
                },
                "TurnResult": {
                    "type": "object",
                    "required": ["replies", "expect"],
                    "properties": {
                        "replies": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["text", "buttons"],
                                "properties": {
                                    "text": {"type": "string"},
                                    "attachment": {
                                        "description": "A file sent with the message "
                                        "(/mydata's export); present only then.",
                                        "type": "object",
                                        "required": ["filename", "media_type", "content"],
                                        "properties": {
                                            "filename": {"type": "string"},
                                            "media_type": {"type": "string"},
                                            "content": {"type": "string"},
                                        },
                                    },
                                    "buttons": {
                                        "type": "array",
                                        "items": {"$ref": "#/components/schemas/Button"},
                                    },
                                },
                            },
                        },
                        "expect": {
                            "type": "object",
                            "required": ["type", "slot"],
                            "properties": {
                                "type": {
                                    "enum": [
                                        "text",
                                        "choice",
                                        "yes_no",
                                        "rating",
                                        "number",
                                        "date",
                                        "topic",
                                        "none",
                                    ]
                                },
                                "slot": {"type": ["string", "null"]},
                            },
                        },
                    },
                },
                "Export": {
                    "type": "object",
                    "required": [
                        "schema",
                        "person",
                        "conversation",
                        "goals",
                        "checkins",
                        "interests",
                        "recommendations",
                        "classes",
                        "links",
                        "alerts",
                        "nudges",
                        "digests",
                        "messages",
                    ],
                    "properties": {
                        "schema": {"const": "coach.export/v1"},
                        "person": {"type": "object"},
                        "conversation": {"type": "object"},
                        "goals": {"type": "array"},
                        "checkins": {"type": "array"},
                        "interests": {"type": "array"},
                        "recommendations": {"type": "array"},
                        "classes": {"type": "array"},
                        "links": {"type": "array"},
                        "alerts": {"type": "array"},
                        "nudges": {"type": "array"},
                        "digests": {"type": "array"},
                        "messages": {"type": "array"},
                    },
                },
            },
        },
    }
