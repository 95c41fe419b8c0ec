/** Worker thread for ingest: opens, decodes and hashes chunks of images (see inspectAll in images.ts). */
import { parentPort } from 'node:worker_threads';
import { inspectImage, mapPool } from './images.js';

export interface InspectRequest {
  id: number;
  files: string[];
  concurrency: number;
}

parentPort!.on('message', (req: InspectRequest) => {
  void mapPool(req.files, req.concurrency, inspectImage).then((results) => parentPort!.postMessage({ id: req.id, results }));
});
