"""Find a server's handler from a ``module:Class`` string, for ``sqs-rpc serve``.

Every failure is a :class:`~sqs_rpc.ConfigurationError` whose message says what to pass, never
an ImportError traceback: a typo in the command line is a usage error.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from typing import Any

from sqs_rpc._errors import ConfigurationError
from sqs_rpc._server.poller import MessageHandler

__all__ = ["load_handler"]

logger = logging.getLogger(__name__)


def load_handler(spec: str, app_dir: str) -> Any:
    """Import ``module:Class`` and return an instance (or the object, if already one)."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigurationError(
            f"HANDLER {spec!r} must be module:Class, for example myapp.rpc:Orders"
        )
    path = os.path.abspath(app_dir)
    added = path not in sys.path
    if added:
        sys.path.insert(0, path)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ConfigurationError(
            f"cannot import {module_name!r} ({exc}); run from your project's directory, pass "
            "--app-dir, or set PYTHONPATH"
        ) from None
    except Exception as exc:
        logger.debug("importing %s failed", module_name, exc_info=True)
        raise ConfigurationError(
            f"importing {module_name!r} failed: {type(exc).__name__}: {exc} (-vv shows the "
            "traceback)"
        ) from None
    finally:
        if added:
            sys.path.remove(path)
    try:
        target = getattr(module, attribute)
    except AttributeError:
        raise ConfigurationError(f"module {module_name!r} has no attribute {attribute!r}") from None
    if isinstance(target, type):
        if not issubclass(target, MessageHandler) and not callable(getattr(target, "handle", None)):
            raise ConfigurationError(f"{spec} is not a MessageHandler subclass")
        try:
            return target()
        except TypeError as exc:
            raise ConfigurationError(
                f"cannot create {spec}() with no arguments ({exc}); give its __init__ "
                "defaults, or point HANDLER at a ready instance (module:instance)"
            ) from None
    if callable(getattr(target, "handle", None)):
        return target
    raise ConfigurationError(f"{spec} is neither a MessageHandler subclass nor an instance of one")
