import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { FerCleanError } from '../errors.js';

/**
 * The frozen pretrained face networks that turn an image into a feature vector. Metadata only (no tfjs import),
 * so commands can validate `--backbone` cheaply. Weights ship in the installed npm package and are read from
 * its files, never from the network.
 */
export interface BackboneInfo {
  /** Id stored in embeddings.backbone. */
  id: string;
  /** Feature dimension. */
  dim: number;
  /** Square RGB input size the network expects, in pixels. */
  inputSize: number;
  /** npm package whose files hold the weights. */
  package: string;
  /** Weights manifest inside the package's model/ folder. */
  manifest: string;
  /** What the network was trained for, in a few words. */
  description: string;
  /** Licence of the weights. */
  licence: string;
}

/**
 * Preprocessing revision: bump when decoding, resizing or normalisation changes, so stored embeddings of the
 * old revision stop counting as done. prep2 = sharp decode to RGB at the image's own size, then face-api's
 * padToSquare and resizeBilinear in tfjs (see preprocess.ts); (rgb - meanRgb) / 255 in the network.
 * (prep1, never shipped, resized with sharp.)
 */
export const PREPROCESSING_REVISION = 'prep2';

const FACE_API = '@vladmandic/face-api';

/** face-api subtracts these means from RGB in 0..255, then divides by 255 (src/ops/normalize.ts). */
export const MEAN_RGB = [122.782, 117.001, 104.298] as const;

export const BACKBONES: Readonly<Record<string, BackboneInfo>> = {
  faceexpr: {
    id: 'faceexpr',
    dim: 256,
    inputSize: 112,
    package: FACE_API,
    manifest: 'face_expression_model-weights_manifest.json',
    description: "expression features: faceExpressionNet's feature extractor",
    licence: 'MIT (face-api.js by Vincent Mühler; packaged by Vladimir Mandic)',
  },
  facerec: {
    id: 'facerec',
    dim: 128,
    inputSize: 150,
    package: FACE_API,
    manifest: 'face_recognition_model-weights_manifest.json',
    description: "identity descriptor: faceRecognitionNet (dlib ResNet), about 3x slower",
    licence: 'MIT package; weights from dlib-models, released into the public domain by Davis King',
  },
};

export const DEFAULT_BACKBONE = 'faceexpr';

export interface ResolvedBackbone {
  /** As asked, normalised: `faceexpr` or `faceexpr+facerec`. */
  name: string;
  /** The single backbones it is made of, in concatenation order. */
  parts: BackboneInfo[];
  /** Sum of the parts' dims. */
  dim: number;
}

/** Parses `a` or `a+b+...` into known backbones; an unknown or repeated name is a FerCleanError listing the known ones. */
export function resolveBackbone(name: string): ResolvedBackbone {
  const ids = name.split('+').map((s) => s.trim().toLowerCase());
  const parts: BackboneInfo[] = [];
  for (const id of ids) {
    const b = BACKBONES[id];
    if (!b) {
      throw new FerCleanError(
        `unknown backbone '${id}' in '${name}' (known: ${Object.keys(BACKBONES).join(', ')}; join with + to concatenate, e.g. faceexpr+facerec)`,
      );
    }
    if (parts.includes(b)) throw new FerCleanError(`backbone '${id}' appears twice in '${name}'`);
    parts.push(b);
  }
  return { name: parts.map((p) => p.id).join('+'), parts, dim: parts.reduce((s, p) => s + p.dim, 0) };
}

const require = createRequire(import.meta.url);
const packageDirs = new Map<string, string>();

/** Folder of an installed package (where its package.json is). */
export function packageDir(pkg: string): string {
  let dir = packageDirs.get(pkg);
  if (!dir) {
    try {
      dir = dirname(require.resolve(`${pkg}/package.json`));
    } catch {
      throw new FerCleanError(`package ${pkg} is not installed (it holds the backbone weights): run \`npm install\``);
    }
    packageDirs.set(pkg, dir);
  }
  return dir;
}

/** Path of a backbone's weights manifest in the installed package. */
export function manifestPath(b: BackboneInfo): string {
  return join(packageDir(b.package), 'model', b.manifest);
}

/**
 * The version stored with each embedding: `package@version/prepN`. It changes when the installed package (hence
 * the weights) or the preprocessing changes.
 */
export function backboneVersion(b: BackboneInfo): string {
  const pkg = JSON.parse(readFileSync(join(packageDir(b.package), 'package.json'), 'utf8')) as { version: string };
  return `${b.package.replace(/^@[^/]+\//, '')}@${pkg.version}/${PREPROCESSING_REVISION}`;
}
