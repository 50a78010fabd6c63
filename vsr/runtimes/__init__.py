"""Runtimes: how a model is read (`model_files`: export folders; `checkpoints`: training checkpoints),
turned into graphs (`graphs`: ONNX, TorchScript, ncnn) and run (`runners`: eager, ONNX Runtime, OpenVINO,
ncnn; `factory`: one by name), the verified cache of on-the-fly exports (`cache`), and the choice of
the fastest that agrees with PyTorch (`choice`). Used by export, inference and training
alike; imports none of them."""
