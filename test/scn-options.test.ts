import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { InvalidOptionsError, trainRun, validateTrainOptions, type TrainRunOptions } from '../src/scn/index.js';
import { openStore } from '../src/store/db.js';
import { useStore, useTempDir } from './helpers.js';

const base: TrainRunOptions = {
  method: 'scn',
  backbone: 'faceexpr',
  backend: 'cpu',
  labelSource: { kind: 'given' },
  noiseRate: 0,
  noiseType: 'symmetric',
  seed: 1,
  folds: 5,
};

const problems = (o: Partial<TrainRunOptions>): string[] => {
  try {
    validateTrainOptions({ ...base, ...o });
    return [];
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidOptionsError);
    return (e as InvalidOptionsError).problems.map((p) => p.option);
  }
};

describe("trainRun's options are validated at the library's door", () => {
  it('accepts the defaults and the edges of every range', () => {
    expect(problems({})).toEqual([]);
    expect(problems({ head: { dropout: 0, hidden: 0, lrDecay: 1, weightDecay: 0, batchSize: 2 }, scn: { delta1: 5, delta2: 0, gamma: 1 } })).toEqual([]);
    expect(problems({ noiseRate: 0.999, seed: 0, folds: 2 })).toEqual([]);
  });

  it('names each option out of range as TrainRunOptions does, with what is expected', () => {
    expect(problems({ head: { dropout: 1 } })).toEqual(['head.dropout']);
    expect(problems({ scn: { beta: 0 } })).toEqual(['scn.beta']);
    expect(problems({ scn: { beta: 1 } })).toEqual(['scn.beta']);
    expect(problems({ scn: { delta1: -0.1 } })).toEqual(['scn.delta1']);
    expect(problems({ noiseRate: 1 })).toEqual(['noiseRate']);
    expect(problems({ head: { lr: Number.NaN, epochs: 0, batchSize: 1 } })).toEqual(['head.lr', 'head.batchSize', 'head.epochs']);
    expect(problems({ scn: { relabelEpoch: 1.5, relabelScope: 'some' as never }, folds: 1, seed: -1 })).toEqual([
      'scn.relabelEpoch',
      'scn.relabelScope',
      'folds',
      'seed',
    ]);
    expect(() => validateTrainOptions({ ...base, head: { dropout: 1 } })).toThrow(/^head\.dropout 1: expected a rate in \[0, 1\)$/);
    try {
      validateTrainOptions({ ...base, noiseRate: -1, scn: { gamma: 2 } });
      expect.unreachable();
    } catch (e) {
      expect((e as InvalidOptionsError).message).toBe('2 bad options');
      expect((e as InvalidOptionsError).details).toEqual(['scn.gamma 2: expected a weight in [0, 1]', 'noiseRate -1: expected a fraction in [0, 1)']);
    }
  });

  it('refuses SCN options for the other methods (ce proposals use the paper delta2, not a given one)', () => {
    expect(() => validateTrainOptions({ ...base, method: 'ce', scn: { delta2: 0.3 } })).toThrow(/^method ce takes no SCN options \(scn\.delta2\)$/);
    expect(() => validateTrainOptions({ ...base, method: 'cl', propose: 'predicted' })).toThrow(/method cl takes no SCN options \(propose\)/);
    expect(() => validateTrainOptions({ ...base, method: 'ce', scn: {} })).not.toThrow();
  });

  describe('trainRun', () => {
    const t = useTempDir();
    const store = useStore(t, (dir) => ({ db: openStore(join(dir, 'x.db')) }));
    it('checks before it reads or writes anything', async () => {
      // The empty database would be "no dataset yet"; the options are refused first and no run is created.
      await expect(trainRun(store.db, { ...base, scn: { beta: 2 } })).rejects.toThrow(/scn\.beta 2: expected a fraction in \(0, 1\)/);
      expect(store.db.prepare('SELECT count(*) AS n FROM runs').get()).toEqual({ n: 0 });
    });
  });
});
