import type * as Ort from 'onnxruntime-node';
import { FerCleanError } from '../errors.js';
import type { BackboneInfo } from './backbones.js';
import { decodeFaces, tuneSharpForSmallImages, type DecodedBatch, type FaceEmbedder } from './decode.js';
import type { FaceSource } from './facebox.js';
import { toNchwBatch } from './onnx-input.js';

/**
 * One backbone on onnxruntime-node's native CPU kernels (the graph from onnx-graph.ts). No tfjs here: worker
 * threads running onnxruntime never load it.
 */

let runtime: Promise<typeof Ort> | undefined;

/** onnxruntime-node, loaded once per thread; rejects with the loader's first line when it cannot load. */
export function loadOnnxRuntime(): Promise<typeof Ort> {
  runtime ??= import('onnxruntime-node').then(
    (m) => m as unknown as typeof Ort,
    (e: unknown) => {
      const code = (e as { code?: string }).code;
      throw new Error(code === 'ERR_MODULE_NOT_FOUND' ? 'onnxruntime-node not installed' : `onnxruntime-node failed to load (${(e as Error).message.split('\n')[0]})`);
    },
  );
  return runtime;
}

export class OnnxEmbedder implements FaceEmbedder {
  private constructor(
    readonly info: BackboneInfo,
    private readonly ort: typeof Ort,
    private readonly session: Ort.InferenceSession,
  ) {}

  /**
   * @param info the backbone
   * @param model its serialised ONNX graph (buildOnnxModel)
   * @param threads onnxruntime intra-op threads for this session
   */
  static async create(info: BackboneInfo, model: Uint8Array, threads: number): Promise<OnnxEmbedder> {
    const ort = await loadOnnxRuntime();
    let session: Ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(model, {
        intraOpNumThreads: threads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
        // idle intra-op threads sleep instead of spinning: the cores are shared with decoding (and other jobs)
        extra: { session: { intra_op: { allow_spinning: '0' } } },
      });
    } catch (e) {
      throw new FerCleanError(`onnxruntime rejected the ${info.id} graph: ${(e as Error).message.split('\n')[0]}`);
    }
    tuneSharpForSmallImages();
    return new OnnxEmbedder(info, ort, session);
  }

  decode(faces: readonly FaceSource[]): Promise<DecodedBatch> {
    return decodeFaces(faces);
  }

  async run(batch: DecodedBatch): Promise<Float32Array> {
    return this.infer(toNchwBatch(batch.images, this.info.inputSize));
  }

  /** Features of a prepared [n, 3, S, S] input batch (toNchwBatch), row-major n x dim. */
  async infer(nchw: Float32Array): Promise<Float32Array> {
    const size = this.info.inputSize;
    const input = new this.ort.Tensor('float32', nchw, [nchw.length / (3 * size * size), 3, size, size]);
    const out = await this.session.run({ input });
    const features = out['features']!;
    try {
      return new Float32Array(features.data as Float32Array); // own copy: safe to transfer to another thread
    } finally {
      features.dispose();
      input.dispose();
    }
  }

  dispose(): Promise<void> {
    return this.session.release();
  }
}
