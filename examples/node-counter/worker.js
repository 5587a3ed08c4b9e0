// A cncf worker for Node.js: speaks the wire protocol (docs/wire-protocol.md)
// on the pipes named by CNCF_FD_REQUESTS / CNCF_FD_REPLIES / CNCF_FD_CONTROL
// and hosts one component: a module exporting a class (or an object) whose
// methods are the operations.  An operation rejects its arguments by throwing
// an Error whose name is 'Rejected' (optional `attributes` object): the failure
// record's code is then "rejected" (HTTP 400); anything else it throws is
// "raised" (HTTP 500).  No dependencies beyond Node's standard library.
'use strict';
const fs = require('fs');
const net = require('net');
const path = require('path');

const KIND = { HELLO: 1, LOAD: 2, LOADED: 3, NEW: 4, INVOKE: 5, CANCEL: 6, UNLOAD: 7,
               RESULT: 8, PING: 9, SHUTDOWN: 10, EVENT: 11 };
const fd = (name, dflt) => Number(process.env[name] || dflt);
const replies = fd('CNCF_FD_REPLIES', 4);

function send(kind, body) {
  const data = Buffer.from(JSON.stringify(body), 'utf8');
  const frame = Buffer.alloc(5 + data.length);
  frame.writeUInt32BE(data.length, 0);
  frame.writeUInt8(kind, 4);
  data.copy(frame, 5);
  let off = 0;
  while (off < frame.length) off += fs.writeSync(replies, frame, off, frame.length - off);
}

function frames(fdNumber, onFrame, onEnd) {
  let buf = Buffer.alloc(0);
  // net.Socket, not fs streams: a pipe read through the thread pool blocks process exit.
  const stream = new net.Socket({ fd: fdNumber, readable: true, writable: false });
  stream.on('data', (chunk) => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    while (buf.length >= 5) {
      const length = buf.readUInt32BE(0);
      if (buf.length < 5 + length) break;
      const kind = buf.readUInt8(4);
      const body = JSON.parse(buf.subarray(5, 5 + length).toString('utf8'));
      buf = buf.subarray(5 + length);
      onFrame(kind, body);
    }
  });
  stream.on('end', onEnd);
  stream.on('error', onEnd);
}

const cancelled = new Set();
const slots = new Map();

function failure(code, message, err, attributes) {
  const cause = err ? { type: (err && err.name) || typeof err, message: String(err && err.message || err),
                        stack: String(err && err.stack || '') } : null;
  return { code, message, cause, attributes: attributes || {} };
}

function operationsOf(target) {
  const proto = typeof target === 'function' ? target.prototype : Object.getPrototypeOf(target);
  const names = new Set();
  for (let p = proto; p && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
    for (const name of Object.getOwnPropertyNames(p)) {
      if (name !== 'constructor' && !name.startsWith('_') && typeof p[name] === 'function') names.add(name);
    }
  }
  if (typeof target === 'object') {
    for (const name of Object.keys(target)) if (!name.startsWith('_') && typeof target[name] === 'function') names.add(name);
  }
  return [...names].sort().map((name) => ({ name, params: null, doc: '' }));
}

const handlers = {
  [KIND.LOAD](body) {
    const entry = body.entry || body.artifact;
    const [file, exported] = String(entry).split(':');
    let target;
    try {
      const mod = require(path.resolve(process.cwd(), file));
      target = exported ? mod[exported] : mod;
      if (target === undefined) throw new Error(`${file} exports no ${exported}`);
    } catch (err) {
      const code = err && err.code === 'MODULE_NOT_FOUND' ? 'entry_not_found' : 'import_failed';
      return send(KIND.LOADED, { id: body.id, ok: false, failure: failure(code, `loading ${entry} failed: ${err.message}`, err) });
    }
    slots.set(body.instance, { target, obj: null });
    send(KIND.LOADED, { id: body.id, ok: true, operations: operationsOf(target), entry });
  },
  [KIND.NEW](body) {
    const slot = slots.get(body.instance);
    try {
      slot.obj = typeof slot.target === 'function' ? new slot.target() : slot.target;
      send(KIND.RESULT, { id: body.id, ok: true, value: null });
    } catch (err) {
      send(KIND.RESULT, { id: body.id, ok: false, failure: failure('constructor_failed', `constructor threw: ${err.message}`, err) });
    }
  },
  async [KIND.INVOKE](body) {
    const slot = slots.get(body.instance);
    const fn = slot && slot.obj && slot.obj[body.operation];
    if (typeof fn !== 'function') {
      return send(KIND.RESULT, { id: body.id, ok: false, failure: failure('unknown_operation', `no operation ${body.operation}`) });
    }
    const context = { call: body.call, cancelled: () => cancelled.has(body.id) };
    try {
      const args = [...(body.args || [])];
      if (body.kwargs && Object.keys(body.kwargs).length) args.push(body.kwargs);
      const value = await fn.apply(slot.obj, args.concat([context]).slice(0, Math.max(args.length, fn.length)));
      let text;
      try { text = JSON.stringify({ id: body.id, ok: true, value: value === undefined ? null : value }); }
      catch (err) { return send(KIND.RESULT, { id: body.id, ok: false, failure: failure('result_not_serialisable', err.message, err) }); }
      send(KIND.RESULT, JSON.parse(text));
    } catch (err) {
      if (err && err.name === 'Rejected' && !cancelled.has(body.id)) {  // the caller's arguments are wrong
        const attributes = err.attributes && typeof err.attributes === 'object' ? err.attributes : {};
        return send(KIND.RESULT, { id: body.id, ok: false, failure: failure('rejected', err.message || `${body.operation} rejected its arguments`, err, attributes) });
      }
      const code = cancelled.has(body.id) ? 'cancelled' : 'raised';
      send(KIND.RESULT, { id: body.id, ok: false, failure: failure(code, `${body.operation} threw ${err && err.name}: ${err && err.message}`, err) });
    } finally {
      cancelled.delete(body.id);
    }
  },
  [KIND.UNLOAD](body) { slots.delete(body.instance); send(KIND.RESULT, { id: body.id, ok: true, value: null }); },
  [KIND.PING](body) {
    send(KIND.RESULT, { id: body.id, ok: true, value: { pid: process.pid, rss_kb: Math.round(process.memoryUsage().rss / 1024) } });
  },
  [KIND.SHUTDOWN]() { process.exit(0); },
};

frames(fd('CNCF_FD_REQUESTS', 3), (kind, body) => {
  const handler = handlers[kind];
  if (!handler) { process.stderr.write(`unexpected frame kind ${kind}\n`); process.exit(3); }
  handler(body);
}, () => process.exit(0));
frames(fd('CNCF_FD_CONTROL', 5), (kind, body) => { if (kind === KIND.CANCEL) cancelled.add(body.id); }, () => process.exit(0));

send(KIND.HELLO, { protocol: 1, runtime: `node-${process.versions.node}`, pid: process.pid });
