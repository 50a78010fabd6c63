"""Upscale a video: python upscale.py input=IN_VIDEO output=OUT_VIDEO weights=DIR [tile=..] [chunk=..]
"""

from vsr.apps.upscale import cli

if __name__ == "__main__":
    cli()
