import assert from "node:assert/strict";
import snappy from "snappyjs";
import { lz4Decompress, snappyDecompress, zstdDecompress } from "./codecs.ts";

const text = new TextEncoder().encode('{"resourceType":"Bundle","type":"message"}'.repeat(50));

Deno.test("codecs: raw snappy, as librdkafka writes it", () => {
  assert.deepEqual(snappyDecompress(snappy.compress(text)), text);
});

Deno.test("codecs: xerial-framed snappy, as the Java producer writes it, in several blocks", () => {
  const blocks = [text.subarray(0, 700), text.subarray(700)].map((b) => snappy.compress(b));
  const header = [0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00, 0, 0, 0, 1, 0, 0, 0, 1];
  const framed = new Uint8Array([
    ...header,
    ...blocks.flatMap((b) => [...new Uint8Array(new Uint32Array([b.length]).buffer).reverse(), ...b]),
  ]);
  assert.deepEqual(snappyDecompress(framed), text);
});

Deno.test("codecs: an LZ4 frame and a zstd frame (fixed bytes from the reference tools)", () => {
  // `printf hello | lz4 -c` and `printf hello | zstd -c`
  const lz4Frame = new Uint8Array([
    0x04,
    0x22,
    0x4d,
    0x18,
    0x64,
    0x40,
    0xa7,
    0x05,
    0x00,
    0x00,
    0x80,
    0x68,
    0x65,
    0x6c,
    0x6c,
    0x6f,
    0x00,
    0x00,
    0x00,
    0x00,
    0xf9,
    0x77,
    0x00,
    0xfb,
  ]);
  const zstdFrame = new Uint8Array([
    0x28,
    0xb5,
    0x2f,
    0xfd,
    0x04,
    0x58,
    0x29,
    0x00,
    0x00,
    0x68,
    0x65,
    0x6c,
    0x6c,
    0x6f,
    0xa3,
    0x6d,
    0x9f,
    0x88,
  ]);
  const hello = new TextEncoder().encode("hello");
  assert.deepEqual(lz4Decompress(lz4Frame), hello);
  assert.deepEqual(zstdDecompress(zstdFrame), hello);
});
