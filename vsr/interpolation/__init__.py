"""Frame interpolation: baselines, scene-cut detection, streaming interpolation of frame sequences,
and the training module for the learned interpolator (`vsr.models.interp`)."""
