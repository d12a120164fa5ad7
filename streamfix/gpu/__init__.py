"""The GPU path: on-device slicing and thumbnails, NVDEC frames via DLPack, TensorRT-compiled networks.

Everything here is written so that it runs on CPU tensors too (the tests check it there); only
the device changes on a GPU machine.

- :mod:`streamfix.gpu.probe` — what the machine offers (CUDA device, torch-tensorrt, NVENC), lazily.
- :mod:`streamfix.gpu.slicing` — slicing as PyTorch gathers on per-frame value tables (the
  fused CPU kernel's maths), planar or NV12 input, fp16 tables where the bit depth allows.
- :mod:`streamfix.gpu.frames` — decoded frames to tensors (DLPack), thumbnail on the device, one
  download of the planes the encoder needs.
- :mod:`streamfix.gpu.trt` — torch-tensorrt compilation of an engine's network, with a disk cache.
"""
