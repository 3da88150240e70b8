"""Options that the generation commands share (generate, video, training-video, interpolate): one definition each."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Snapshot = Annotated[Path, typer.Argument(metavar="SNAPSHOT", help="A pgtrain snapshot (.pt): a run's "
                                          "network-*.pt or `pgtrain import-tf` output.")]
Lod = Annotated[float | None, typer.Option(help="Level of detail (default: the snapshot's Gs lod).")]
BatchSize = Annotated[int, typer.Option("--batch-size", help="Images per forward pass.")]
Device = Annotated[str, typer.Option(help="torch device, e.g. cpu or cuda.")]
Overwrite = Annotated[bool, typer.Option(help="Replace existing outputs of the same names.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]
Shrink = Annotated[int, typer.Option(help="Box-average the images by this factor (official image_shrink).")]
Zoom = Annotated[float, typer.Option(help="Nearest-neighbour zoom of each frame (official image_zoom).")]
Fps = Annotated[int, typer.Option(help="Frames per second (official 30).")]
Codec = Annotated[str, typer.Option(help="Video encoder: libx264 (H.264, opens everywhere) or libx265 (H.265, "
                                    "smaller).")]
Bitrate = Annotated[str, typer.Option(help="Target bitrate, FFmpeg style (16M = 16 Mbit/s, the official).")]
VideoOut = Annotated[Path, typer.Option(help="Output video (.mp4).")]
