"""ToolkitError: one base class for the three packages' user errors, that each can derive from by changing
only its base class, keeping its constructor and what its errors say."""

from __future__ import annotations

import pickle

import pytest

from pgdata.common.errors import ToolkitError
from pgdata.errors import PgdataError
from pgmetrics.errors import PgmetricsError
from pgtrain.errors import PgtrainError


# Each package's error as it will be once its base is ToolkitError: its own __init__ first, then ToolkitError's.
class DerivedPgdataError(PgdataError, ToolkitError):
    pass


class DerivedPgmetricsError(PgmetricsError, ToolkitError):
    pass


class DerivedPgtrainError(PgtrainError, ToolkitError):
    pass


DERIVED = {PgdataError: DerivedPgdataError, PgmetricsError: DerivedPgmetricsError, PgtrainError: DerivedPgtrainError}


def derived(error_type: type[Exception]) -> type[Exception]:
    return error_type if issubclass(error_type, ToolkitError) else DERIVED[error_type]


def test_message_and_path_make_one_line() -> None:
    error = ToolkitError("not a dataset", "data/x")
    assert str(error) == "data/x: not a dataset"
    assert (error.message, error.path, error.args) == ("not a dataset", "data/x", ("data/x: not a dataset",))
    assert str(ToolkitError("plain")) == "plain" and ToolkitError("plain").path is None


@pytest.mark.parametrize("error_type", [PgdataError, PgmetricsError])
@pytest.mark.parametrize("arguments", [("bad header",), ("bad header", "some/file.npy"), ("odd", ""),
                                       ("why", "dir/")])
def test_deriving_keeps_what_pgdata_and_pgmetrics_errors_say(error_type, arguments) -> None:
    today, tomorrow = error_type(*arguments), derived(error_type)(*arguments)
    assert isinstance(tomorrow, ToolkitError)
    assert (str(tomorrow), tomorrow.args, tomorrow.path) == (str(today), today.args, today.path)
    assert tomorrow.message == arguments[0]


def test_deriving_keeps_what_pgtrain_errors_say() -> None:
    today, tomorrow = PgtrainError("x.pt: damaged"), derived(PgtrainError)("x.pt: damaged")
    assert (str(tomorrow), tomorrow.args) == (str(today), today.args) and tomorrow.path is None


@pytest.mark.parametrize("error_type", [PgdataError, PgmetricsError, PgtrainError])
def test_errors_keep_their_path_across_processes(error_type) -> None:
    error = derived(error_type)("truncated", "a/b.tar")
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), str(copy), copy.path, copy.message) == (type(error), "a/b.tar: truncated", "a/b.tar",
                                                                "truncated")
