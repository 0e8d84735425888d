#!/usr/bin/env node
// A minimal actors worker in Node.js, written from docs/protocol.md alone (no actors code).
// It serves `node.add(x, y)` and `node.echo(...args)`: binds to (or creates) each task's
// durable consumer on ACTORS, rejects bad input to ACTORS_DEAD (with a FAILURE record when
// the id is valid), runs the task, stores the result record, publishes `link` callbacks and
// the next `chain` step (task signatures only; ids derived as the doc says), then acks.
// Chords are not supported.
//
//   node worker.mjs [--url URL]
//
// Prints "ready" on stdout once it consumes; runs until SIGTERM or SIGINT.

import { parseArgs } from "node:util";

import { encode } from "@msgpack/msgpack";
import { AckPolicy, DeliverPolicy, connect, headers, nanos } from "nats";

import {
  DEAD_STREAM,
  PROTOCOL_VERSION,
  RESULTS_BUCKET,
  TASK_ID,
  TASK_NAME,
  TASK_PREFIX,
  TASK_STREAM,
  decodeBody,
  derivedId,
  encodeBody,
  mediaType,
} from "./protocol.mjs";

const TASKS = {
  "node.add": (x, y) => x + y,
  "node.echo": (...args) => args,
};
const ACK_WAIT_S = 30;

class Malformed extends Error {}

/** The checks of "Bad input and dead letters" that this worker needs; returns the message. */
function parseMessage(data, contentType, name) {
  let body;
  try {
    body = decodeBody(data, contentType);
  } catch (error) {
    throw new Malformed(`body is not valid ${mediaType(contentType)}: ${error.message}`);
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) throw new Malformed("task message must be a map");
  if (!TASK_ID.test(body.id ?? "")) throw new Malformed("missing or invalid task id");
  if (body.task !== name) throw new Malformed(`message names task ${JSON.stringify(body.task)}, not ${name}`);
  const args = body.args ?? [];
  const kwargs = body.kwargs ?? {};
  if (!Array.isArray(args)) throw new Malformed("field 'args' must be an array");
  if (kwargs === null || typeof kwargs !== "object" || Array.isArray(kwargs)) throw new Malformed("field 'kwargs' must be a map");
  for (const field of ["link", "chain"]) {
    for (const sig of body[field] ?? []) {
      if (!TASK_NAME.test(sig?.task ?? "") || (sig.kind ?? "task") !== "task") throw new Malformed(`bad signature in '${field}'`);
      const taskId = sig.options?.task_id;
      if (taskId != null && !TASK_ID.test(taskId)) throw new Malformed(`bad task_id in '${field}'`);
    }
  }
  return { ...body, args, kwargs };
}

function now() {
  return new Date().toISOString(); // RFC 3339 UTC with a Z suffix
}

class Worker {
  constructor(nc, kv) {
    this.nc = nc;
    this.js = nc.jetstream();
    this.kv = kv;
  }

  async store(record) {
    await this.kv.put(record.id, encode({ v: PROTOCOL_VERSION, ...record }));
  }

  async deadLetter(m, name, reason, id) {
    const h = headers();
    for (const [key, values] of m.headers ?? []) {
      if (key.toLowerCase() !== "nats-msg-id") for (const value of values) h.append(key, value);
    }
    const seq = m.info.streamSequence;
    h.set("Actors-Dead-Reason", reason.replace(/[\r\n]/g, " ").slice(0, 1000));
    h.set("Actors-Dead-Subject", m.subject);
    h.set("Actors-Dead-Sequence", String(seq));
    h.set("Actors-Dead-Task", name);
    h.set("Nats-Msg-Id", `dead-${TASK_STREAM}-${seq}`);
    await this.js.publish(`actors.dead.${name}`, m.data, { headers: h });
    if (id !== undefined) {
      const error = { type: "actors.errors.ProtocolError", message: reason, args: [reason] };
      await this.store({ id, status: "FAILURE", task: name, error, date_done: now() });
    }
  }

  /** Publish a task signature as a message, with `extra` prepended to its args. */
  async send(sig, seed, extra, message, chain = []) {
    const id = sig.options?.task_id ?? derivedId(seed);
    const body = {
      v: PROTOCOL_VERSION,
      id,
      task: sig.task,
      args: sig.immutable ? sig.args ?? [] : [...extra, ...(sig.args ?? [])],
      kwargs: sig.kwargs ?? {},
      root_id: message.root_id ?? message.id,
      parent_id: message.id,
    };
    for (const field of ["link", "link_error"]) if (sig.options?.[field]) body[field] = sig.options[field];
    if (chain.length) body.chain = chain;
    const h = headers();
    // options.msg_id (a replacement's final task) MUST be the Nats-Msg-Id when present
    const msgId = typeof sig.options?.msg_id === "string" ? sig.options.msg_id : id;
    h.set("Nats-Msg-Id", msgId);
    h.set("Content-Type", "application/msgpack");
    await this.js.publish(TASK_PREFIX + sig.task, encodeBody(body, "application/msgpack"), { headers: h });
  }

  async handle(name, m) {
    let message;
    try {
      message = parseMessage(m.data, m.headers?.get("Content-Type") || undefined, name);
    } catch (error) {
      if (!(error instanceof Malformed)) throw error;
      let id;
      try {
        const body = decodeBody(m.data, m.headers?.get("Content-Type") || undefined);
        if (TASK_ID.test(body?.id ?? "")) id = body.id;
      } catch {
        // the id cannot be read: no record
      }
      await this.deadLetter(m, name, `malformed message: ${error.message}`, id);
      m.ack();
      return;
    }
    const base = { id: message.id, task: name, retries: message.retries ?? 0 };
    if (message.expires && Date.parse(message.expires) < Date.now()) {
      const error = { type: "actors.errors.Revoked", message: "expired", args: ["expired"] };
      await this.store({ ...base, status: "REVOKED", error, date_done: now() });
      m.ack();
      return;
    }
    let value;
    try {
      value = TASKS[name](...message.args);
    } catch (error) {
      const description = { type: error.name, message: error.message, args: [error.message] };
      await this.store({ ...base, status: "FAILURE", error: description, traceback: error.stack, date_done: now() });
      m.ack();
      return;
    }
    if (message.ignore_result !== true) await this.store({ ...base, status: "SUCCESS", result: value, date_done: now() });
    for (const [index, sig] of (message.link ?? []).entries()) {
      await this.send(sig, `${message.id}.link.${index}`, [value], message);
    }
    const [next, ...rest] = message.chain ?? [];
    if (next) await this.send(next, `${message.id}.next`, [value], message, rest);
    m.ack();
  }

  /** Start consuming the task's messages; `done` settles when the consumer stops. */
  async serve(name) {
    const durable = name.replaceAll(".", "-");
    const jsm = await this.js.jetstreamManager();
    await jsm.consumers.add(TASK_STREAM, {
      durable_name: durable,
      filter_subject: TASK_PREFIX + name,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(ACK_WAIT_S * 1000),
      max_ack_pending: 20000,
    });
    const consumer = await this.js.consumers.get(TASK_STREAM, durable);
    const messages = await consumer.consume();
    // Wrapped, since an async function returning a promise would wait for it.
    return { done: (async () => {
      for await (const m of messages) {
        try {
          await this.handle(name, m);
        } catch (error) {
          // not acked: redelivered after ack_wait
          process.stderr.write(`task ${name} seq ${m.info.streamSequence}: ${error.stack ?? error}\n`);
        }
      }
    })() };
  }
}

async function main() {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { url: { type: "string", default: process.env.NATS_URL ?? "nats://127.0.0.1:4222" } },
  });
  const nc = await connect({ servers: values.url, name: "actors-node-worker" });
  const kv = await nc.jetstream().views.kv(RESULTS_BUCKET, { bindOnly: true });
  await (await nc.jetstream().jetstreamManager()).streams.info(DEAD_STREAM); // exists once any worker ran
  const worker = new Worker(nc, kv);
  const loops = await Promise.all(Object.keys(TASKS).map((name) => worker.serve(name)));
  process.stdout.write("ready\n");
  const stop = () => nc.drain();
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  await Promise.all(loops.map((loop) => loop.done));
  await nc.closed();
}

main().then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`error: ${error.stack ?? error}\n`);
    process.exit(1);
  },
);
