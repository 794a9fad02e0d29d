"""Errors of the scoring worker's boundary (HTTP requests, settings, experiment).

Every error the API returns carries an HTTP status, a machine ``code``, the
``field`` it is about (when there is one) and whether the client or
infrastructure may simply retry (``retriable``, aiokafka's idea)::

    Exception
    ├── SettingsError             a SMARTTRIP_* variable is missing or malformed (also a ValueError)
    └── ApiError                  (status, code, field, problem, retriable)
        ├── RequestError          400/413/422: malformed JSON, too large, invalid field
        ├── AuthError             401 no or unknown bearer token / 403 token lacks the scope
        ├── RateLimited           429 the client's request budget is spent (retriable, Retry-After)
        ├── NotReady              503 no catalog loaded yet (retriable)
        ├── Unavailable           503 Redis unreachable for an admin write (retriable)
        └── NotFound / Conflict   404 / 409 from the model store (unknown model, version conflict)

The JSON body of an error response is
``{"error": code, "field": field, "problem": problem, "message": "field: problem", "retriable": bool}``.

>>> err = RequestError("preferences.budget", "must be a number, got str")
>>> err.status, err.body()["message"], err.retriable
(422, 'preferences.budget: must be a number, got str', False)
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ApiError",
    "AuthError",
    "Conflict",
    "NotFound",
    "NotReady",
    "RateLimited",
    "RequestError",
    "SettingsError",
    "Unavailable",
]


class SettingsError(ValueError):
    """A ``SMARTTRIP_*`` environment variable is missing, malformed or out of range."""


class ApiError(Exception):
    """An error answered to the client as JSON (see the module docstring)."""

    status: int = 500
    code: str = "internal_error"
    retriable: bool = False

    def __init__(self, field: str | None, problem: str) -> None:
        super().__init__(f"{field}: {problem}" if field else problem)
        self.field = field
        self.problem = problem

    def body(self) -> dict[str, Any]:
        return {
            "error": self.code,
            "field": self.field,
            "problem": self.problem,
            "message": str(self),
            "retriable": self.retriable,
        }


class RequestError(ApiError):
    """The request is invalid; ``status`` 400 (not JSON), 413 (too large) or 422 (a field)."""

    status = 422
    code = "invalid_request"

    def __init__(self, field: str | None, problem: str, *, status: int = 422) -> None:
        super().__init__(field, problem)
        self.status = status
        if status == 400:
            self.code = "malformed_request"
        elif status == 413:
            self.code = "request_too_large"


class AuthError(ApiError):
    """401 without a known token, 403 when the token lacks the scope."""

    def __init__(self, problem: str, *, status: int) -> None:
        super().__init__("Authorization", problem)
        self.status = status
        self.code = "unauthorized" if status == 401 else "forbidden"


class RateLimited(ApiError):
    """429: the client's token bucket is empty; ``retry_after_s`` says when one request fits."""

    status = 429
    code = "rate_limited"
    retriable = True

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(None, f"too many requests; retry after {retry_after_s:.3f} s")
        self.retry_after_s = retry_after_s


class NotReady(ApiError):
    status = 503
    code = "not_ready"
    retriable = True


class Unavailable(ApiError):
    status = 503
    code = "unavailable"
    retriable = True


class NotFound(ApiError):
    status = 404
    code = "not_found"


class Conflict(ApiError):
    status = 409
    code = "conflict"
