"""pgshards v1, the dataset format pgdata writes (docs/pgshards.md), one module per job.

`layout` (names, sizes, sample encodings, shared by every other module), `manifest` (build, write, load and
check manifest.json), `reader` (PgshardsReader, behind pgdata.formats.open_dataset) and `verify` (`pgdata
verify`). The writer is pgdata.shard_writer, next to the exporter that drives it.
"""
