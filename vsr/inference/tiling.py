"""Run a clip model over spatial tiles with context padding, blending overlaps without seams."""

from collections.abc import Callable

import torch


def _spans(size: int, tile: int, pad: int) -> list[tuple[int, int, int, int]]:
    """`(core_start, core_end, padded_start, padded_end)` along one axis."""
    spans = []
    for start in range(0, size, tile):
        end = min(start + tile, size)
        spans.append((start, end, max(0, start - pad), min(size, end + pad)))
    return spans


def _ramp(span: tuple[int, int, int, int], scale: int) -> torch.Tensor:
    """Blend weight along one axis of a tile's output: 1 over its core, rising linearly from
    near 0 at a cut edge across the padding (image borders are not cut, so no ramp there)."""
    start, end, p0, p1 = (v * scale for v in span)
    pos = torch.arange(p0, p1, dtype=torch.float32) + 0.5
    weight = torch.ones(p1 - p0)
    if start > p0:
        weight = torch.minimum(weight, (pos - p0) / (start - p0))
    if p1 > end:
        weight = torch.minimum(weight, (p1 - pos) / (p1 - end))
    return weight


def run_tiled(fn: Callable[[torch.Tensor], torch.Tensor], clip: torch.Tensor, scale: int,
              tile: int, tile_pad: int) -> torch.Tensor:
    """Apply `fn` (`(T, C, h, w)` -> `(T', C, scale*h, scale*w)`) to `clip` `(T, C, H, W)` tile by tile.

    Tiles are `tile` x `tile` LR pixels plus `tile_pad` pixels of context on each cut side.
    Overlapping outputs are averaged with weights that favour each tile's own core, so where the
    model's receptive field fits in `tile_pad` the result equals the untiled one, and elsewhere
    tile borders are feathered instead of showing seams. `tile <= 0` runs the whole frame.
    """
    h, w = clip.shape[-2:]
    if tile <= 0 or (h <= tile and w <= tile):
        return fn(clip)
    rows, cols = _spans(h, tile, tile_pad), _spans(w, tile, tile_pad)
    out = None
    row_sum = torch.zeros(h * scale)
    col_sum = torch.zeros(w * scale)
    for r in rows:
        wy = _ramp(r, scale)
        row_sum[r[2] * scale: r[3] * scale] += wy
        for c in cols:
            wx = _ramp(c, scale)
            if r is rows[0]:
                col_sum[c[2] * scale: c[3] * scale] += wx
            piece = fn(clip[..., r[2]:r[3], c[2]:c[3]]).float().cpu()
            if out is None:
                out = torch.zeros(*piece.shape[:-2], h * scale, w * scale)
            out[..., r[2] * scale: r[3] * scale, c[2] * scale: c[3] * scale] += piece * (wy[:, None] * wx[None, :])
    # The tile grid is a product of row and column spans, so the summed weights factorise.
    return out.div_(row_sum[:, None] * col_sum[None, :])
