"""The public surface: exactly what sqs_rpc exports, sorted and documented."""

from __future__ import annotations

import inspect

import sqs_rpc
import sqs_rpc.aws_lambda

# Public submodules: each has its own sorted __all__ of documented names.
SUBMODULES = [sqs_rpc.aws_lambda]


def test_all_is_sorted_and_unique() -> None:
    assert list(sqs_rpc.__all__) == sorted(set(sqs_rpc.__all__))


def test_all_lists_every_public_name() -> None:
    public = {
        name
        for name, value in vars(sqs_rpc).items()
        if not name.startswith("_") and not inspect.ismodule(value) and name != "annotations"
    }
    assert public | {"__version__"} == set(sqs_rpc.__all__)


def test_every_public_class_and_function_has_a_docstring() -> None:
    for name in sqs_rpc.__all__:
        value = getattr(sqs_rpc, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), f"{name} has no docstring"


def test_exceptions_share_one_root() -> None:
    for name in sqs_rpc.__all__:
        value = getattr(sqs_rpc, name)
        if inspect.isclass(value) and issubclass(value, Exception):
            assert issubclass(value, sqs_rpc.SqsRpcError), name


def test_version_is_a_string() -> None:
    assert isinstance(sqs_rpc.__version__, str)
    assert sqs_rpc.__version__.count(".") == 2


def test_public_submodules_export_sorted_documented_names() -> None:
    for module in SUBMODULES:
        assert list(module.__all__) == sorted(set(module.__all__)), module.__name__
        public = {
            name
            for name, value in vars(module).items()
            if not name.startswith("_") and not inspect.ismodule(value) and name != "annotations"
        }
        assert public == set(module.__all__), module.__name__
        assert inspect.getdoc(module), module.__name__
        for name in module.__all__:
            value = getattr(module, name)
            if inspect.isclass(value) or inspect.isfunction(value):
                assert inspect.getdoc(value), f"{module.__name__}.{name} has no docstring"
