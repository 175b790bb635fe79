"""What a handler is called with: the function's side of an invocation."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Handler = Callable[[dict[str, Any], Any], dict[str, Any] | None]

DEFAULT_TIMEOUT_SECONDS = 900.0  # Lambda's largest function timeout


@dataclass
class LambdaContext:
    """The attributes handlers commonly read from the Lambda context object."""

    function_name: str
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return int((self.timeout_seconds - (time.monotonic() - self.started)) * 1000)
