"""Kept for pgtrain.outputs and pgmetrics.output until they import pgdata.common.atomic themselves."""

from pgdata.common.atomic import reserve_temporary  # noqa: F401
