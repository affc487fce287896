"""TFLite models to ONNX with tf2onnx (opset 17), the same bytes on every build.

After conversion, tensors and nodes are renamed canonically (graph inputs and outputs keep their
names). MediaPipe's custom Convolution2DTransposeBias, which onnxruntime cannot run, can be
rewritten as a standard ConvTranspose.

Determinism: tf2onnx 1.17's optimisers iterate over sets of graph nodes, which hash by memory
address, so which of several equivalent rewrites wins varied between runs (189 to 191 nodes for
the segmentation model). ``hash_nodes_by_creation_order`` makes nodes hash by creation order, and
body_models.py re-runs itself with PYTHONHASHSEED=0 so sets of tensor names iterate in a fixed
order too.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import tf2onnx
import tf2onnx.graph
from onnx import helper, numpy_helper

OPSET = 17


class CheckFailed(RuntimeError):
    """A check of a built model failed; that model is not written."""


def check(ok: bool, message: object) -> None:
    """Like assert, but not removed by python -O."""
    if not ok:
        raise CheckFailed(str(message))


def hash_nodes_by_creation_order() -> None:
    """Makes tf2onnx's sets of nodes iterate in a fixed order (see the module docstring).

    Graph copies (deepcopy) keep their originals' numbers, which are unique within a graph.
    """
    counter = itertools.count()
    node_class: Any = tf2onnx.graph.Node
    original_init = node_class.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        self._creation_index = next(counter)
        original_init(self, *args, **kwargs)

    node_class.__init__ = init
    node_class.__hash__ = lambda self: self._creation_index


def convert(tflite: Path) -> onnx.ModelProto:
    model, _ = tf2onnx.convert.from_tflite(str(tflite), opset=OPSET)
    return model


def _attribute(node: onnx.NodeProto, name: str) -> Any:
    return next(helper.get_attribute_value(a) for a in node.attribute if a.name == name)


def replace_transpose_conv(model: onnx.ModelProto) -> onnx.ModelProto:
    """MediaPipe's Convolution2DTransposeBias (NHWC, weights [out,h,w,in], bias) as an ONNX ConvTranspose.

    tf2onnx works in NCHW and leaves the custom node behind a Transpose to NHWC: the ConvTranspose
    takes that Transpose's input instead, and a Transpose back to NHWC gives the old output name.
    """
    graph = model.graph
    customs = [n for n in graph.node if n.op_type.endswith("Convolution2DTransposeBias")]
    check(len(customs) == 1, [n.op_type for n in customs])
    custom = customs[0]
    x, weights_name, bias_name = custom.input
    initializers = {i.name: i for i in graph.initializer}
    weights = numpy_helper.to_array(initializers[weights_name])
    check(weights.shape[1:3] == (2, 2), weights.shape)
    producer = next((n for n in graph.node if x in n.output), None)
    consumers = [n for n in graph.node if x in n.input]
    nodes = list(graph.node)
    before: list[onnx.NodeProto] = []
    if (
        producer is not None
        and producer.op_type == "Transpose"
        and list(_attribute(producer, "perm")) == [0, 2, 3, 1]
        and len(consumers) == 1
    ):
        x_nchw = producer.input[0]
        nodes.remove(producer)
    else:
        x_nchw = f"{x}__nchw"
        before = [helper.make_node("Transpose", [x], [x_nchw], perm=[0, 3, 1, 2])]
    kernel = numpy_helper.from_array(
        np.ascontiguousarray(weights.transpose(3, 0, 1, 2)), f"{weights_name}__iohw"
    )
    y = custom.output[0]
    replacement = [
        *before,
        helper.make_node(
            "ConvTranspose",
            [x_nchw, kernel.name, bias_name],
            [f"{y}__nchw"],
            kernel_shape=[2, 2],
            strides=[2, 2],
        ),
        helper.make_node("Transpose", [f"{y}__nchw"], [y], perm=[0, 2, 3, 1]),
    ]
    at = nodes.index(custom)
    nodes[at : at + 1] = replacement
    del graph.node[:]
    graph.node.extend(nodes)
    if not any(weights_name in n.input for n in graph.node):
        graph.initializer.remove(initializers[weights_name])
    graph.initializer.append(kernel)
    return model


def canonicalise(model: onnx.ModelProto) -> onnx.ModelProto:
    """Tensors t00000.. in order of first use, nodes n0000_<op>, initializers in name order.

    tf2onnx's own names carry counters of the whole conversion; the graph's inputs and outputs
    keep their names (the runtime feeds and fetches them by name).
    """
    graph = model.graph
    keep = {i.name for i in graph.input} | {o.name for o in graph.output}
    names: dict[str, str] = {}

    def rename(tensor: str) -> str:
        if tensor == "" or tensor in keep:
            return tensor
        return names.setdefault(tensor, f"t{len(names):05d}")

    for index, node in enumerate(graph.node):
        node.input[:] = [rename(t) for t in node.input]
        node.output[:] = [rename(t) for t in node.output]
        node.name = f"n{index:04d}_{node.op_type}"
    unused = [i.name for i in graph.initializer if i.name not in names]
    check(not unused, f"initializers no node reads: {unused}")
    for initializer in graph.initializer:
        initializer.name = names[initializer.name]
    ordered = sorted(graph.initializer, key=lambda i: i.name)
    del graph.initializer[:]
    graph.initializer.extend(ordered)
    del graph.value_info[:]
    return model


def build(tflite: Path, *, rewrite: bool = False) -> bytes:
    model = convert(tflite)
    if rewrite:
        model = replace_transpose_conv(model)
    model = canonicalise(model)
    onnx.checker.check_model(model, full_check=True)
    custom = [n.op_type for n in model.graph.node if n.domain or n.op_type.startswith("TFL_")]
    check(not custom, f"nodes onnxruntime cannot run: {custom}")
    data: bytes = model.SerializeToString()
    again = canonicalise(replace_transpose_conv(convert(tflite)) if rewrite else convert(tflite))
    same = again.SerializeToString() == data
    print(f"  {len(model.graph.node)} nodes; converted twice, identical bytes: {same}")
    check(same, "two conversions gave different bytes")
    return data
