/**
 * What the project's in-memory ONNX graphs share (the backbones in onnx-graph.ts, the head's passes in
 * scn/engine.ts, the cosine products in quality/similarity.ts): a tensor's type and the model around a graph.
 */
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

/** A tensor type of `dims` (a string is a symbolic size, e.g. the batch), of float32 unless `elemType` says otherwise. */
export function tensorType(dims: readonly (number | string)[], elemType: number = onnx.TensorProto.DataType.FLOAT): onnxProto.onnx.ITypeProto {
  return { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } };
}

/** `graph` as an encoded ONNX model (IR 8, opset 13, the default domain), ready for an onnxruntime session. */
export function encodeModel(graph: onnxProto.onnx.IGraphProto, docString?: string): Uint8Array {
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 13 }],
    producerName: 'fer-clean',
    ...(docString === undefined ? {} : { docString }),
    graph,
  });
  return onnx.ModelProto.encode(model).finish();
}
