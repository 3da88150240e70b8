"""The shared layer of the three tools (pgdata, pgtrain, pgmetrics): each helper they all need, written once.

pgdata is what pgtrain and pgmetrics both depend on, so the layer lives here. Its modules:
- `errors`: ToolkitError, the base of PgdataError, PgtrainError and PgmetricsError;
- `cli`: `run_cli`, the console entry of the three programs (--debug, PG_DEBUG, one-line errors);
- `atomic`: output files written under a temporary name and renamed into place (paths, files, bytes/text/JSON);
- `images`: CHW <-> HWC, the official float -> uint8 conversion, tiling a grid;
- `resolution`: power-of-two checks and log2 of a resolution;
- `device`: torch device selection (torch imported only when called);
- `cache`: the per-user cache folder (the package's variable, then XDG_CACHE_HOME, then ~/.cache);
- `run_files`: the snapshot file names that pgtrain writes and pgmetrics reads.
Nothing here imports torch at import time, and nothing imports from pgtrain or pgmetrics.
"""
