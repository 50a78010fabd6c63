"""The four entry points as Hydra apps, run by `python train.py ...` in a checkout and by the console
commands `vsrlab-train`, `vsrlab-evaluate`, `vsrlab-export` and `vsrlab-upscale` after `pip install`
(their configs are package data: vsr/conf)."""
