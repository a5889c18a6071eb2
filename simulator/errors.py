"""Binance error codes: the exact ``{"code": -NNNN, "msg": "..."}`` bodies and their HTTP statuses.

Every rule the simulator enforces raises an ``ApiError``; the server turns it into the JSON body
Binance sends (binance-spot-api-docs errors.md; reference/binance-api.md §4).
"""
from __future__ import annotations

from dataclasses import dataclass, field

DECIMAL_PATTERN = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"


@dataclass
class ApiError(Exception):
    """A Binance API error. ``headers`` are extra response headers (e.g. Retry-After)."""

    code: int
    msg: str
    status: int = 400
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(f"{self.code}: {self.msg}")

    def body(self) -> dict[str, object]:
        return {"code": self.code, "msg": self.msg}


# -- 10xx general ---------------------------------------------------------------------------------


def unknown_error() -> ApiError:
    return ApiError(-1000, "An unknown error occurred while processing the request.", 500)


def service_unavailable() -> ApiError:
    return ApiError(-1008, "Service Unavailable.", 503)


def status_unknown() -> ApiError:
    """5xx after the request was executed: the client must treat the outcome as unknown."""
    return ApiError(
        -1007,
        "Timeout waiting for response from backend server. Send status unknown; execution status unknown.",
        503,
    )


def too_much_weight(limit: int, retry_after_s: int) -> ApiError:
    return ApiError(
        -1003,
        f"Too much request weight used; current limit is {limit} request weight per 1 MINUTE. "
        "Please use WebSocket Streams for live updates to avoid polling the API.",
        429,
        {"Retry-After": str(retry_after_s)},
    )


def ip_banned(until_ms: int, retry_after_s: int) -> ApiError:
    return ApiError(
        -1003,
        f"Way too much request weight used; IP banned until {until_ms}. "
        "Please use WebSocket Streams for live updates to avoid bans.",
        418,
        {"Retry-After": str(retry_after_s)},
    )


def too_many_orders(limit: int, interval: str, retry_after_s: int) -> ApiError:
    return ApiError(
        -1015,
        f"Too many new orders; current limit is {limit} orders per {interval}.",
        429,
        {"Retry-After": str(retry_after_s)},
    )


def timestamp_outside_window() -> ApiError:
    return ApiError(-1021, "Timestamp for this request is outside of the recvWindow.")


def timestamp_ahead() -> ApiError:
    return ApiError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")


def bad_signature() -> ApiError:
    return ApiError(-1022, "Signature for this request is not valid.")


def illegal_chars(param: str) -> ApiError:
    return ApiError(
        -1100,
        f"Illegal characters found in parameter '{param}'; legal range is '{DECIMAL_PATTERN}'.",
    )


def illegal_chars_int(param: str) -> ApiError:
    return ApiError(-1100, f"Illegal characters found in parameter '{param}'; legal range is '^[0-9]{{1,20}}$'.")


def mandatory_missing(param: str) -> ApiError:
    return ApiError(-1102, f"Mandatory parameter '{param}' was not sent, was empty/null, or malformed.")


def one_of_missing(a: str, b: str) -> ApiError:
    return ApiError(-1102, f"Param '{a}' or '{b}' must be sent, but both were empty/null!")


def not_required(param: str) -> ApiError:
    return ApiError(-1106, f"Parameter '{param}' sent when not required.")


def too_much_precision(param: str) -> ApiError:
    return ApiError(-1111, f"Parameter '{param}' has too much precision.")


def invalid_tif() -> ApiError:
    return ApiError(-1115, "Invalid timeInForce.")


def invalid_order_type() -> ApiError:
    return ApiError(-1116, "Invalid orderType.")


def invalid_side() -> ApiError:
    return ApiError(-1117, "Invalid side.")


def invalid_interval() -> ApiError:
    return ApiError(-1120, "Invalid interval.")


def invalid_symbol() -> ApiError:
    return ApiError(-1121, "Invalid symbol.")


def invalid_resp_type() -> ApiError:
    return ApiError(-1177, "Invalid newOrderRespType.")


def bad_recv_window() -> ApiError:
    return ApiError(-1131, "recvWindow must be less than 60000")


def illegal_param(msg: str) -> ApiError:
    """-1102-style validation failure with a custom message (e.g. 'limit' out of range)."""
    return ApiError(-1102, msg)


def filter_failure(name: str) -> ApiError:
    return ApiError(-1013, f"Filter failure: {name}")


def order_type_not_supported() -> ApiError:
    return ApiError(-1013, "Unsupported order combination.")


# -- 20xx trading ---------------------------------------------------------------------------------


def new_order_rejected(msg: str) -> ApiError:
    return ApiError(-2010, msg)


def insufficient_balance() -> ApiError:
    return new_order_rejected("Account has insufficient balance for requested action.")


def duplicate_order() -> ApiError:
    return new_order_rejected("Duplicate order sent.")


def would_take() -> ApiError:
    return new_order_rejected("Order would immediately match and take.")


def unknown_order_cancel() -> ApiError:
    return ApiError(-2011, "Unknown order sent.")


def order_does_not_exist() -> ApiError:
    return ApiError(-2013, "Order does not exist.")


def api_key_format_invalid() -> ApiError:
    return ApiError(-2014, "API-key format invalid.", 401)


def invalid_api_key() -> ApiError:
    return ApiError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
