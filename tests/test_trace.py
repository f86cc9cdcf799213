"""`trace`: full-size shapes, parameters and FLOPs on the meta device, with no weights in memory."""

from __future__ import annotations

import pytest

from visionbench.measure.trace import trace


@pytest.fixture(scope="module")
def depthpro_trace():
    return trace("depthpro")


def test_full_size_depthpro_shapes_and_flops(depthpro_trace):
    t = depthpro_trace
    assert t.params == 951_991_330
    assert t.input_shapes == {"pixel_values": [1, 3, 1536, 1536]}
    assert t.output_shapes == [[1, 1536, 1536], [1]]  # predicted depth, field of view
    assert t.flops == pytest.approx(19.25e12, rel=0.01)
    first = t.layers[0]
    assert first.name == "depth_pro.encoder.patch_encoder.model.embeddings.patch_embeddings.projection"
    assert first.output_shapes == [[35, 1024, 24, 24]]  # 35 patches at three scales


def test_depthpro_components_partition_the_model(depthpro_trace):
    t = depthpro_trace
    assert sum(t.component_params.values()) == t.params
    assert t.component_params["patch encoder"] == 303_739_904
    assert t.component_params["fov"] == 304_259_553
    shares = {k: v / t.flops for k, v in t.component_flops.items()}
    assert sum(t.component_flops.values()) == pytest.approx(t.flops, rel=0.001)
    assert max(shares, key=shares.get) == "patch encoder"
    assert shares["patch encoder"] == pytest.approx(0.695, abs=0.01)


def test_leaf_layers_are_in_call_order_with_own_params(depthpro_trace):
    layers = depthpro_trace.layers
    assert [layer.index for layer in layers] == list(range(len(layers)))
    leaf_params = sum(layer.params for layer in {layer.name: layer for layer in layers}.values())
    # the rest sits on non-leaf modules (DINOv2 embeddings: class token and position embeddings)
    assert 0.99 * 951_991_330 < leaf_params < 951_991_330


@pytest.mark.parametrize(
    "name,size,output",
    [
        ("yolo11n", 320, [1, 84, 2100]),
        ("depth-anything-v2-small", 518, [1, 518, 518]),
        ("mobile-sam", 1024, [1, 1, 256, 256]),
    ],
)
def test_other_families_trace_on_meta(name, size, output):
    t = trace(name, input_size=size)
    assert output in t.output_shapes
    assert t.flops > 0 and t.layers


def test_batch_size_scales_flops():
    one, two = trace("yolo11n", input_size=256), trace("yolo11n", input_size=256, batch_size=2)
    assert two.flops == 2 * one.flops
