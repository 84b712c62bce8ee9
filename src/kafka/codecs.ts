/**
 * Decompression of Snappy, LZ4 and Zstandard record batches for KafkaJS, which has only GZIP built in.
 * All three are pure JavaScript, so they work inside `deno compile` (the usual KafkaJS codec packages wrap
 * native addons). eventsink never compresses what it writes, so `compress` is not offered.
 */
import { Buffer } from "node:buffer";
import * as zstd from "fzstd";
import lz4 from "lz4js";
import snappy from "snappyjs";

/** A KafkaJS codec: `CompressionCodecs[type] = () => codec`. */
export interface Codec {
  compress(encoder: unknown): Promise<Buffer>;
  decompress(buffer: Buffer): Promise<Buffer>;
}

// The Java producer frames Snappy the way snappy-java's SnappyOutputStream does ("xerial" framing):
// a 16-byte header, then blocks each prefixed with their compressed length. librdkafka writes raw Snappy.
const XERIAL_MAGIC = [0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00];
const XERIAL_HEADER_BYTES = 16;

/** Decompresses raw or xerial-framed Snappy. */
export function snappyDecompress(data: Uint8Array): Uint8Array {
  if (!XERIAL_MAGIC.every((byte, i) => data[i] === byte)) return snappy.uncompress(data);
  const blocks: Uint8Array[] = [];
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  for (let at = XERIAL_HEADER_BYTES; at < data.length;) {
    const size = view.getUint32(at);
    blocks.push(snappy.uncompress(data.subarray(at + 4, at + 4 + size)));
    at += 4 + size;
  }
  const out = new Uint8Array(blocks.reduce((size, block) => size + block.length, 0));
  blocks.reduce((at, block) => (out.set(block, at), at + block.length), 0);
  return out;
}

/** Decompresses an LZ4 frame, as Kafka writes LZ4 batches. */
export function lz4Decompress(data: Uint8Array): Uint8Array {
  return Uint8Array.from(lz4.decompress(data));
}

/** Decompresses a Zstandard frame. */
export function zstdDecompress(data: Uint8Array): Uint8Array {
  return zstd.decompress(data);
}

function codec(name: string, decompress: (data: Uint8Array) => Uint8Array): () => Codec {
  const result: Codec = {
    compress: () => Promise.reject(new Error(`eventsink does not write ${name}-compressed batches`)),
    decompress: (buffer) => {
      const bytes = decompress(buffer);
      return Promise.resolve(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    },
  };
  return () => result;
}

/** KafkaJS codecs, for `CompressionCodecs[CompressionTypes.…]`. */
export const snappyCodec = codec("Snappy", snappyDecompress);
export const lz4Codec = codec("LZ4", lz4Decompress);
export const zstdCodec = codec("ZSTD", zstdDecompress);
