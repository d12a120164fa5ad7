"""Numerical contract of the TensorRT path, checked on the CPU: each engine's network exported with
``torch.export`` in fp16 (the graph torch-tensorrt's dynamo path compiles, at the precision it
compiles) agrees with the eager fp32 network, and the grids and sliced frames it leads to agree
with the eager engine's. Identity has no network; engines whose network is not held in an
attribute of their own (ExCNet trains its network per frame) are skipped with the reason."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch
from torch import nn

from streamfix.engines import available_engines, create_engine
from streamfix.gpu.trt import (
    CompiledNetwork,
    DeviceFacts,
    ExportCompiler,
    forget_loaded,
    install_network,
    install_tensorrt,
)
from streamfix.grid.kernels import slice_planes_cpu
from streamfix.grid.thumbnail import thumbnail_from_planes
from streamfix.io.frames import planes_of
from streamfix.synth import backlit_frame

FACTS = DeviceFacts("cpu (contract test)", (0, 0), torch.__version__, "none", "none")


def random_weights(name: str, folder: Path, sci_weights: Path) -> Path | None:
    """Seeded random weights for engines that need a file (their shipped weights may not exist)."""
    torch.manual_seed(0)
    if name == "sci":
        return sci_weights
    if name == "backlitnet":
        net_mod = pytest.importorskip("streamfix.engines.backlitnet_net")
        path = folder / "backlitnet.safetensors"
        net = net_mod.BacklitNet()
        with torch.no_grad():  # make the heads speak: the initialisation keeps them almost silent
            net.head[-1].weight.normal_(0, 0.02)
            net.guide_head.weight.normal_(0, 0.02)
        net_mod.save_backlitnet(net, path, {"purpose": "tests"})
        return path
    return None


class Recorder(nn.Module):
    """Passes calls to the network and keeps the first input it saw."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.inputs: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor, *args, **kw):  # noqa: ANN002, ANN003
        self.inputs.append(x.detach().clone())
        return self.net(x, *args, **kw)


def flat(obj) -> list[torch.Tensor]:  # noqa: ANN001
    if isinstance(obj, torch.Tensor):
        return [obj]
    return [t for o in obj for t in flat(o)]


@pytest.fixture(scope="module")
def frame() -> av.VideoFrame:
    rgb = backlit_frame(320, 180, 0.3)
    return av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")


@pytest.mark.parametrize("name", [c.name for c in available_engines()])
def test_exported_fp16_network_agrees_with_eager(name: str, frame: av.VideoFrame, tiny_sci_weights: Path,
                                                 tmp_path: Path) -> None:
    weights = random_weights(name, tmp_path, tiny_sci_weights)
    try:
        engine = create_engine(name, weights)
    except Exception as e:  # noqa: BLE001 - an engine that needs weights this test cannot make
        pytest.skip(f"engine {name} cannot be built here: {e}")
    eager = engine.network()
    if eager is None:
        pytest.skip(f"engine {name} has no network (nothing for TensorRT to compile)")
    rec = Recorder(eager)
    if not install_network(engine, rec):
        pytest.skip(f"engine {name} does not keep its network in an attribute (not compiled)")
    planes = planes_of(frame)
    thumb = thumbnail_from_planes(planes, engine.card.thumbnail)
    grid_eager = engine.predict(thumb)
    install_network(engine, eager)
    assert rec.inputs, f"{name}.predict did not call its network"
    x = rec.inputs[0]

    forget_loaded()
    wrapper = install_tensorrt(engine, None, tmp_path / "cache", ExportCompiler(FACTS))
    assert isinstance(wrapper, CompiledNetwork)
    with torch.inference_mode():
        want = flat(eager(x))
        got = flat(wrapper(x))  # the torch.export'ed fp16 graph, saved and loaded through the cache
    assert [r.status for r in wrapper.records] == ["built"] and wrapper.records[0].key.dtype == "float16"
    for w, g in zip(want, got, strict=True):
        assert g.dtype == w.dtype and g.shape == w.shape
        scale = max(1.0, float(w.abs().max()))
        assert float((g - w).abs().max()) <= 1e-2 * scale, f"{name}: fp16 export differs from eager"

    # what it means for the picture: the grid from the compiled network slices to within 2 codes
    grid_compiled = engine.predict(thumb)
    a = slice_planes_cpu(planes, grid_eager)
    b = slice_planes_cpu(planes, grid_compiled)
    for p, q in ((a.y, b.y), (a.u, b.u), (a.v, b.v)):
        assert np.abs(p.astype(int) - q.astype(int)).max() <= 2
