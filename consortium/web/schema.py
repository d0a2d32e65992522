"""What the OpenAPI description says of every operation (a post-processing hook); the
bearer-token scheme is described beside its authentication class."""

PROBLEM = {"$ref": "#/components/schemas/Problem"}
METHODS = ("get", "post", "put", "patch", "delete")


def problem_details(result, generator, request, public):
    """Post-process the schema so that it says what the API does, everywhere:

    - every error response (4xx, 5xx) is ``application/problem+json`` with the problem
      schema, as the exception handler sends it;
    - every operation may answer 400 (a query or path holding U+0000, a bad Host) and
      401 (no or a bad token); every write 413 (a body over the limits);
    - a request body names only the fields it declares (``additionalProperties:
      false``), as ``StrictSerializer`` refuses any other;
    - an optional query parameter may be empty, which the API reads as absent (no
      filter), as HTML forms send them.
    """
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault(
        "Problem",
        {
            "type": "object",
            "properties": {
                "type": {"type": "string"},
                "title": {"type": "string"},
                "status": {"type": "integer"},
                "detail": {"type": "string"},
                "errors": {"type": "object", "additionalProperties": {}},
            },
            "required": ["type", "title", "status", "detail"],
        },
    )
    bodies = set()
    for item in result.get("paths", {}).values():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            responses = op.setdefault("responses", {})
            responses.setdefault("400", {"description": "Bad request (problem+json)."})
            responses.setdefault("401", {"description": "Not authenticated (problem+json)."})
            if method != "get":
                responses.setdefault("413", {"description": "Body too large (problem+json)."})
            for code, response in responses.items():
                if code[0] in "45":
                    response["content"] = {"application/problem+json": {"schema": PROBLEM}}
            for param in op.get("parameters", []):
                if param.get("in") == "query" and not param.get("required"):
                    param["allowEmptyValue"] = True
            for media in op.get("requestBody", {}).get("content", {}).values():
                ref = media.get("schema", {}).get("$ref", "")
                if ref.startswith("#/components/schemas/"):
                    bodies.add(ref.rsplit("/", 1)[1])
    for name in bodies:
        schema = components.get(name, {})
        if schema.get("type") == "object":
            schema["additionalProperties"] = False
    return result
