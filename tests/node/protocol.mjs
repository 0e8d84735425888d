// Constants and small helpers of the actors wire protocol, written from docs/protocol.md
// alone; shared by the Node conformance runner (conformance.mjs) and worker (worker.mjs).

import { createHash } from "node:crypto";

import { decode, encode } from "@msgpack/msgpack";

export const PROTOCOL_VERSION = 1;
export const TASK_PREFIX = "actors.task.";
export const RESULTS_BUCKET = "actors_results";
export const TASK_STREAM = "ACTORS";
export const DEAD_STREAM = "ACTORS_DEAD";
export const JSON_TYPE = "application/json";
export const MSGPACK_TYPE = "application/msgpack";
export const READY_STATES = new Set(["SUCCESS", "FAILURE", "REVOKED"]);
export const TASK_NAME = /^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$/;
export const TASK_ID = /^[A-Za-z0-9_=-]{1,128}$/;
/** The namespace of every derived task id ("Derived ids" in docs/protocol.md). */
export const ID_NAMESPACE = "6f1c5a0e-4b7d-4c4e-9a51-2f1d3c8b7e10";

/** uuid5(ID_NAMESPACE, seed) in its lowercase hyphenated form (RFC 4122, SHA-1). */
export function derivedId(seed) {
  const namespace = Buffer.from(ID_NAMESPACE.replaceAll("-", ""), "hex");
  const hash = createHash("sha1").update(namespace).update(seed, "utf8").digest();
  hash[6] = (hash[6] & 0x0f) | 0x50; // version 5
  hash[8] = (hash[8] & 0x3f) | 0x80; // RFC 4122 variant
  const hex = hash.subarray(0, 16).toString("hex");
  return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)].join("-");
}

/** The media type of a Content-Type header: lowercase, parameters dropped; msgpack when absent. */
export function mediaType(contentType) {
  return (contentType ?? MSGPACK_TYPE).split(";")[0].trim().toLowerCase();
}

/** Encode a value as a message body of the given Content-Type. */
export function encodeBody(value, contentType) {
  const media = mediaType(contentType);
  if (media === JSON_TYPE) return new TextEncoder().encode(JSON.stringify(value));
  if (media === MSGPACK_TYPE) return encode(value);
  throw new Error(`cannot encode a body as ${contentType}`);
}

/** Decode a message body by its Content-Type; throws on an unsupported type or bad bytes. */
export function decodeBody(data, contentType) {
  const media = mediaType(contentType);
  if (media === JSON_TYPE) return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(data));
  if (media === MSGPACK_TYPE) return decode(data);
  throw new Error(`unsupported Content-Type ${contentType}`);
}

/** JSON for printing: bytes as base64, big integers as strings. */
export function toJson(value) {
  return JSON.stringify(value, (_key, v) => {
    if (v instanceof Uint8Array) return Buffer.from(v).toString("base64");
    if (typeof v === "bigint") return v.toString();
    return v;
  });
}
