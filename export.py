"""Export a checkpoint for inference: python export.py checkpoint=CKPT output_dir=DIR [formats=[onnx,torchscript]]
"""

from vsr.apps.export import cli

if __name__ == "__main__":
    cli()
