"""The Hydra configs of the four apps (a package so that Hydra finds them in an installed vsrlab)."""
