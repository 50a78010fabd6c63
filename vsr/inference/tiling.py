"""Run a clip model over spatial tiles with context padding, blending overlaps without seams."""

from collections.abc import Callable

import torch

from vsr.runtimes.runners import fill_clip, run_recurrent
from vsr.work import part


def _spans(size: int, tile: int, pad: int) -> list[tuple[int, int, int, int]]:
    """`(core_start, core_end, padded_start, padded_end)` along one axis."""
    spans = []
    for start in range(0, size, tile):
        end = min(start + tile, size)
        spans.append((start, end, max(0, start - pad), min(size, end + pad)))
    return spans


def _ramp(span: tuple[int, int, int, int], scale: int, blend: int, size: int) -> torch.Tensor:
    """Blend weight along one axis of a tile's output: 1 over its core, cross-fading linearly to 0
    across `blend` LR pixels centred on each cut edge of the core (image borders are not cut)."""
    start, end, p0, p1 = span
    pos = (torch.arange(p0 * scale, p1 * scale, dtype=torch.float64) + 0.5) / scale  # LR coordinates
    weight = torch.ones(len(pos), dtype=torch.float64)
    if blend > 0:
        if start > 0:
            weight = torch.minimum(weight, ((pos - (start - blend / 2)) / blend).clamp(0, 1))
        if end < size:
            weight = torch.minimum(weight, (((end + blend / 2) - pos) / blend).clamp(0, 1))
    else:  # hard cut at the core
        weight = ((pos >= start) & (pos < end)).double()
    return weight.float()


def needs_tiles(height: int, width: int, tile: int) -> bool:
    return tile > 0 and (height > tile or width > tile)


def run_tiled(fn: Callable[[torch.Tensor], torch.Tensor], clip: torch.Tensor, scale: int,
              tile: int, tile_pad: int, align: int = 1) -> torch.Tensor:
    """Apply `fn` (`(T, C, h, w)` -> `(T', C, scale*h, scale*w)`) to `clip` `(T, C, H, W)` tile by tile.

    Tiles are `tile` x `tile` LR pixels plus `tile_pad` pixels of context on each cut side.
    Neighbouring outputs are cross-faded over `tile_pad` pixels centred on the tile border, so
    the result equals the untiled one where the model's receptive radius is at most `tile_pad / 2`
    (e.g. 18 px for a 1-block RRDBNet), and otherwise the border is feathered rather than a seam.
    `tile <= 0` runs the whole frame.
    `align`: tiles start on multiples of it (models that fold pixel blocks into channels).
    """
    tile, tile_pad = -(-tile // align) * align, -(-tile_pad // align) * align
    h, w = clip.shape[-2:]
    if not needs_tiles(h, w, tile):
        return fn(clip)
    rows, cols = _spans(h, tile, tile_pad), _spans(w, tile, tile_pad)
    out: torch.Tensor | None = None
    row_sum = torch.zeros(h * scale)
    col_sum = torch.zeros(w * scale)
    blend = min(tile_pad, tile)
    for r in rows:
        wy = _ramp(r, scale, blend, h)
        row_sum[r[2] * scale: r[3] * scale] += wy
        for c in cols:
            wx = _ramp(c, scale, blend, w)
            if r is rows[0]:
                col_sum[c[2] * scale: c[3] * scale] += wx
            with part(1 / (len(rows) * len(cols))):
                piece = fn(clip[..., r[2]:r[3], c[2]:c[3]]).float().cpu()
            if out is None:
                out = torch.zeros(*piece.shape[:-2], h * scale, w * scale)
            out[..., r[2] * scale: r[3] * scale, c[2] * scale: c[3] * scale] += piece * (wy[:, None] * wx[None, :])
    # The tile grid is a product of row and column spans, so the summed weights factorise.
    assert out is not None  # h, w > 0: at least one tile
    return out.div_(row_sum[:, None] * col_sum[None, :])


def run_tiled_recurrent(model, clip: torch.Tensor, keep: slice, scale: int, tile: int = 0, tile_pad: int = 0
                        ) -> torch.Tensor:
    """A recurrent model with `kept_states` / `reconstruct` (`vsr.models.RecurrentRRDBNet`) on
    `clip` `(B, T, 3, H, W)` -> its frames `keep`, tiled where tiling is exact (`tile` > 0).

    Its hidden states travel across the whole frame over the clip (flow warps, recurrence), so a
    tile of the whole model would differ from the untiled result wherever motion crosses the tile
    border. Propagation therefore runs on whole LR frames, and only each frame's reconstruction
    (trunk, upsampler: local, and where the memory and time of the high-resolution output go) runs
    tile by tile, with the frame's hidden state as extra input channels.
    """
    h, w = clip.shape[-2:]
    if not needs_tiles(h, w, tile):
        return run_recurrent(model, clip, keep, scale)

    def frames():
        for i, hidden in model.kept_states(clip, keep):
            both = torch.cat((clip[:, i], hidden), 1)  # (B, 3 + C, H, W): cut into the same tiles
            yield run_tiled(lambda x: model.reconstruct(x[:, 3:], x[:, :3]), both, scale, tile, tile_pad)
    return fill_clip(frames(), clip[:, keep], scale)
