'use strict';
// peer-relay: a small Node.js WebSocket relay that speaks the subset of quick-chat's HTTP
// API and `/ws` protocol that quick-chat's load generator (loadgen) uses, so the two can be
// measured side by side with the same client:
//
//   POST /api/v1/user/register   {"username","nickname","password"} -> profile + qc_session cookie
//   POST /api/v1/relation/request {"username","memo"}              -> "requested" | "friend"
//   POST /api/v1/relation/accept  {"username"}                      -> null (friends both ways)
//   POST /api/v1/community/create {"name","description"}            -> the group, the caller its
//                                                                       owner and first member
//   POST /api/v1/community/join   {"community_id","memo"}           -> "requested"
//   POST /api/v1/community/approve {"community_id","username"}      -> null (owner only; the
//                                                                       requester joins; 500 at most)
//   GET  /healthz                                                   -> {"status":"ok"}
//   GET  /ws (cookie qc_session)  -> `ready`; `send` -> `ack` {client_id,id,created_at} to the
//        sender, then `message` (a MessageView, fields at the top level) to every session of
//        the recipient and to the sender's other sessions; a `send` to {"group": id} (members
//        only) is stored and acked alike and delivered to every session of every member but
//        the sending socket, one serialized frame for all; `ping` -> `pong`.
//
// Modes:
//   --mode memory  nothing is stored: an id from a counter, ack and deliver at once (what the
//                  original in-memory relay did).
//   --mode sqlite  every message is inserted into SQLite (better-sqlite3, WAL,
//                  synchronous=NORMAL) with the same columns and indexes as quick-chat's
//                  chat_record (unique (sender, client_id) for idempotent resends,
//                  (conversation, id) for history); all messages that arrive in one turn of
//                  the event loop are inserted in one transaction, and acknowledged only after
//                  it commits. Accounts, sessions, friendships and groups are stored there too.
//
// Options (or environment variables): --host (PEER_HOST, 127.0.0.1), --port (PEER_PORT, 3000),
// --mode (PEER_MODE, memory), --db FILE (PEER_DB, sqlite mode), --state FILE (PEER_STATE,
// memory mode: accounts and groups are loaded from it at start and written to it on
// SIGTERM/SIGINT, so the process can be restarted between registration and measurement), --ping-secs
// (PEER_PING_SECS, 20), --max-batch (PEER_MAX_BATCH, 8192), --max-buffered BYTES
// (PEER_MAX_BUFFERED, 4 MiB: a socket with more unsent data is closed 4001, "too slow"),
// --no-cork (send every frame with its own write instead of one write per socket per turn),
// --stats SECONDS (PEER_STATS_SECS: print messages, transactions and their time every so often).
const http = require('node:http');
const crypto = require('node:crypto');
const fs = require('node:fs');
const { WebSocketServer } = require('ws');

function parseArgs(argv) {
  const env = process.env;
  const o = {
    host: env.PEER_HOST || '127.0.0.1',
    port: Number(env.PEER_PORT || 3000),
    mode: env.PEER_MODE || 'memory',
    db: env.PEER_DB || '',
    state: env.PEER_STATE || '',
    pingSecs: Number(env.PEER_PING_SECS || 20),
    maxBatch: Number(env.PEER_MAX_BATCH || 8192),
    maxBuffered: Number(env.PEER_MAX_BUFFERED || 4 * 1024 * 1024),
    cork: env.PEER_CORK !== '0',
    stats: Number(env.PEER_STATS_SECS || 0),
  };
  for (let i = 2; i < argv.length; i++) {
    const flag = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${flag} needs a value`);
      return argv[++i];
    };
    switch (flag) {
      case '--host': o.host = value(); break;
      case '--port': o.port = Number(value()); break;
      case '--mode': o.mode = value(); break;
      case '--db': o.db = value(); break;
      case '--state': o.state = value(); break;
      case '--ping-secs': o.pingSecs = Number(value()); break;
      case '--max-batch': o.maxBatch = Number(value()); break;
      case '--max-buffered': o.maxBuffered = Number(value()); break;
      case '--no-cork': o.cork = false; break;
      case '--stats': o.stats = Number(value()); break;
      case '-h':
      case '--help':
        console.log('node server.js [--mode memory|sqlite] [--host 127.0.0.1] [--port 3000] ' +
          '[--db FILE (sqlite)] [--state FILE (memory)] [--ping-secs 20] [--max-batch 8192] ' +
          '[--max-buffered BYTES] [--no-cork] [--stats SECONDS]');
        process.exit(0);
        break;
      default: throw new Error(`unknown argument ${flag}`);
    }
  }
  if (o.mode !== 'memory' && o.mode !== 'sqlite') throw new Error('--mode: memory or sqlite');
  if (o.mode === 'sqlite' && !o.db) throw new Error('--mode sqlite needs --db FILE');
  return o;
}

let opts;
try {
  opts = parseArgs(process.argv);
} catch (e) {
  console.error(`peer-relay: ${e.message}`);
  process.exit(2);
}

// ---------------------------------------------------------------------------------------
// Accounts, sessions, friendships: in memory (maps), mirrored to SQLite in sqlite mode.

/** @type {Map<string, User>} by id */
const users = new Map();
/** @type {Map<string, User>} by lower-case username */
const byName = new Map();
/** @type {Map<string, User>} by session token */
const sessions = new Map();

class User {
  constructor(id, username, nickname, createdAt) {
    this.id = id;
    this.username = username;
    this.nickname = nickname;
    this.createdAt = createdAt;
    this.friends = new Set(); // user ids
    this.requestsFrom = new Set(); // user ids that asked this user
    this.sockets = new Set(); // open WebSockets
    this.lastSeen = null;
  }
  profile() {
    return {
      id: this.id, username: this.username, nickname: this.nickname, gender: 'unspecified',
      signature: '', mobile: '', avatar: '', role: 'normal', created_at: this.createdAt,
    };
  }
}

/** @type {Map<string, Group>} by id */
const groups = new Map();
const GROUP_MAX_MEMBERS = 500;

class Group {
  constructor(id, name, description, owner, createdAt) {
    this.id = id;
    this.name = name;
    this.description = description;
    this.owner = owner; // User
    this.createdAt = createdAt;
    this.members = new Set(); // Users, the owner included
    this.requests = new Set(); // Users waiting for the owner
  }
  view(me) {
    const o = this.owner;
    return {
      id: this.id, name: this.name, description: this.description, avatar: '',
      owner: { id: o.id, username: o.username, nickname: o.nickname, avatar: '' },
      member_count: this.members.size,
      membership: o === me ? 'owner'
        : this.members.has(me) ? 'member' : this.requests.has(me) ? 'requested' : 'none',
      created_at: this.createdAt,
    };
  }
}

function addUser(u) {
  users.set(u.id, u);
  byName.set(u.username, u);
}

let db = null;
let stmt = null;
let lastId = 0;

if (opts.mode === 'sqlite') {
  const Database = require('better-sqlite3');
  db = new Database(opts.db);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec(`
    CREATE TABLE IF NOT EXISTS user_base (
      id TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE, nickname TEXT NOT NULL,
      created_at INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS user_session (
      token TEXT PRIMARY KEY, user_id TEXT NOT NULL, created_at INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS friend_request (
      from_id TEXT NOT NULL, to_id TEXT NOT NULL, memo TEXT NOT NULL DEFAULT '',
      PRIMARY KEY (from_id, to_id)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS friend (
      user_id TEXT NOT NULL, friend_id TEXT NOT NULL,
      PRIMARY KEY (user_id, friend_id)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS community (
      id TEXT PRIMARY KEY, owner_id TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL,
      created_at INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS community_request (
      community_id TEXT NOT NULL, user_id TEXT NOT NULL, memo TEXT NOT NULL DEFAULT '',
      PRIMARY KEY (community_id, user_id)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS community_member (
      community_id TEXT NOT NULL, user_id TEXT NOT NULL,
      PRIMARY KEY (community_id, user_id)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS chat_record (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      client_id TEXT NOT NULL,
      sender_id TEXT NOT NULL,
      conversation TEXT NOT NULL,
      target_kind INTEGER NOT NULL,
      target_id TEXT NOT NULL,
      content_kind TEXT NOT NULL,
      body TEXT NOT NULL,
      created_at INTEGER NOT NULL);
    CREATE UNIQUE INDEX IF NOT EXISTS ux_chat_record_client ON chat_record (sender_id, client_id);
    CREATE INDEX IF NOT EXISTS ix_chat_record_conversation ON chat_record (conversation, id);
  `);
  stmt = {
    insertUser: db.prepare('INSERT INTO user_base (id, username, nickname, created_at) VALUES (?, ?, ?, ?)'),
    insertSession: db.prepare('INSERT INTO user_session (token, user_id, created_at) VALUES (?, ?, ?)'),
    insertRequest: db.prepare('INSERT OR REPLACE INTO friend_request (from_id, to_id, memo) VALUES (?, ?, ?)'),
    deleteRequests: db.prepare('DELETE FROM friend_request WHERE (from_id = ? AND to_id = ?) OR (from_id = ? AND to_id = ?)'),
    insertFriend: db.prepare('INSERT OR IGNORE INTO friend (user_id, friend_id) VALUES (?, ?)'),
    insertGroup: db.prepare('INSERT INTO community (id, owner_id, name, description, created_at) VALUES (?, ?, ?, ?, ?)'),
    insertJoinRequest: db.prepare('INSERT OR REPLACE INTO community_request (community_id, user_id, memo) VALUES (?, ?, ?)'),
    deleteJoinRequest: db.prepare('DELETE FROM community_request WHERE community_id = ? AND user_id = ?'),
    insertMember: db.prepare('INSERT OR IGNORE INTO community_member (community_id, user_id) VALUES (?, ?)'),
    // target_kind: 1 a user (conversation u:<a>:<b>), 2 a group (conversation g:<id>), as quick-chat.
    insertMessage: db.prepare(
      'INSERT INTO chat_record (client_id, sender_id, conversation, target_kind, target_id, content_kind, body, created_at) ' +
      "VALUES (?, ?, ?, ?, ?, 'text', ?, ?) ON CONFLICT (sender_id, client_id) DO NOTHING RETURNING id, created_at"),
    existingMessage: db.prepare('SELECT id, created_at FROM chat_record WHERE sender_id = ? AND client_id = ?'),
  };
  for (const r of db.prepare('SELECT id, username, nickname, created_at FROM user_base').iterate()) {
    addUser(new User(r.id, r.username, r.nickname, r.created_at));
  }
  for (const r of db.prepare('SELECT token, user_id FROM user_session').iterate()) {
    const u = users.get(r.user_id);
    if (u) sessions.set(r.token, u);
  }
  for (const r of db.prepare('SELECT from_id, to_id FROM friend_request').iterate()) {
    users.get(r.to_id)?.requestsFrom.add(r.from_id);
  }
  for (const r of db.prepare('SELECT user_id, friend_id FROM friend').iterate()) {
    users.get(r.user_id)?.friends.add(r.friend_id);
  }
  for (const r of db.prepare('SELECT id, owner_id, name, description, created_at FROM community').iterate()) {
    const owner = users.get(r.owner_id);
    if (owner) groups.set(r.id, new Group(r.id, r.name, r.description, owner, r.created_at));
  }
  for (const r of db.prepare('SELECT community_id, user_id FROM community_request').iterate()) {
    const u = users.get(r.user_id);
    if (u) groups.get(r.community_id)?.requests.add(u);
  }
  for (const r of db.prepare('SELECT community_id, user_id FROM community_member').iterate()) {
    const u = users.get(r.user_id);
    if (u) groups.get(r.community_id)?.members.add(u);
  }
  lastId = db.prepare('SELECT COALESCE(MAX(id), 0) AS m FROM chat_record').get().m;
} else if (opts.state && fs.existsSync(opts.state)) {
  const saved = JSON.parse(fs.readFileSync(opts.state, 'utf8'));
  for (const s of saved.users) {
    const u = new User(s.id, s.username, s.nickname, s.created_at);
    for (const f of s.friends) u.friends.add(f);
    for (const f of s.requests_from) u.requestsFrom.add(f);
    addUser(u);
  }
  for (const [token, id] of saved.sessions) {
    const u = users.get(id);
    if (u) sessions.set(token, u);
  }
  for (const s of saved.groups || []) {
    const owner = users.get(s.owner);
    if (!owner) continue;
    const g = new Group(s.id, s.name, s.description, owner, s.created_at);
    for (const id of s.members) if (users.has(id)) g.members.add(users.get(id));
    for (const id of s.requests) if (users.has(id)) g.requests.add(users.get(id));
    groups.set(g.id, g);
  }
}

function saveState() {
  if (opts.mode !== 'memory' || !opts.state) return;
  const tokens = [];
  for (const [token, u] of sessions) tokens.push([token, u.id]);
  const out = {
    users: [...users.values()].map((u) => ({
      id: u.id, username: u.username, nickname: u.nickname, created_at: u.createdAt,
      friends: [...u.friends], requests_from: [...u.requestsFrom],
    })),
    sessions: tokens,
    groups: [...groups.values()].map((g) => ({
      id: g.id, name: g.name, description: g.description, owner: g.owner.id, created_at: g.createdAt,
      members: [...g.members].map((u) => u.id), requests: [...g.requests].map((u) => u.id),
    })),
  };
  fs.writeFileSync(opts.state, JSON.stringify(out));
}

function makeFriends(a, b) {
  a.friends.add(b.id);
  b.friends.add(a.id);
  a.requestsFrom.delete(b.id);
  b.requestsFrom.delete(a.id);
  if (db) {
    db.transaction(() => {
      stmt.deleteRequests.run(a.id, b.id, b.id, a.id);
      stmt.insertFriend.run(a.id, b.id);
      stmt.insertFriend.run(b.id, a.id);
    })();
  }
  // Tell their open sessions, as quick-chat does, so clients reload their lists.
  for (const [u, other] of [[a, b], [b, a]]) {
    const frame = JSON.stringify({ type: 'relation', change: 'friend_added', username: other.username });
    for (const ws of u.sockets) sendFrame(ws, frame);
  }
}

// ---------------------------------------------------------------------------------------
// HTTP.

class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

const MAX_BODY = 64 * 1024;
const USERNAME = /^[a-z0-9_]{3,32}$/;
const COOKIE = /(?:^|;\s*)qc_session=([^;]*)/;

function sessionUser(req) {
  const m = COOKIE.exec(req.headers.cookie || '');
  return m ? sessions.get(m[1]) : undefined;
}

function requireUser(req) {
  const u = sessionUser(req);
  if (!u) throw new ApiError(401, 'unauthorized', 'Log in first.');
  return u;
}

function field(body, name) {
  const v = body[name];
  if (typeof v !== 'string') throw new ApiError(400, 'bad_request', `The body lacks ${name}.`);
  return v;
}

function register(req, body, res) {
  const username = field(body, 'username').toLowerCase();
  const nickname = field(body, 'nickname').trim();
  const password = field(body, 'password');
  if (!USERNAME.test(username)) {
    throw new ApiError(400, 'invalid_field', 'A username has 3 to 32 characters.', 'username');
  }
  if (nickname.length < 1 || nickname.length > 32) {
    throw new ApiError(400, 'invalid_field', 'A nickname has 1 to 32 characters.', 'nickname');
  }
  if (password.length < 8 || password.length > 128) {
    throw new ApiError(400, 'invalid_field', 'A password has 8 to 128 characters.', 'password');
  }
  if (byName.has(username)) throw new ApiError(409, 'username_taken', 'That username is taken.');
  const u = new User(crypto.randomUUID(), username, nickname, Date.now());
  const token = crypto.randomBytes(32).toString('base64url');
  if (db) {
    db.transaction(() => {
      stmt.insertUser.run(u.id, u.username, u.nickname, u.createdAt);
      stmt.insertSession.run(token, u.id, u.createdAt);
    })();
  }
  addUser(u);
  sessions.set(token, u);
  res.setHeader('set-cookie',
    `qc_session=${token}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${30 * 24 * 3600}`);
  return u.profile();
}

function relationRequest(req, body) {
  const me = requireUser(req);
  const other = byName.get(field(body, 'username').toLowerCase());
  const memo = typeof body.memo === 'string' ? body.memo : '';
  if (!other) throw new ApiError(404, 'user_not_found', 'No user has this username.');
  if (other === me) throw new ApiError(400, 'cannot_add_self', 'You cannot add yourself.');
  if (me.friends.has(other.id)) throw new ApiError(409, 'already_friends', 'You are friends already.');
  if (me.requestsFrom.has(other.id)) {
    makeFriends(me, other);
    return 'friend';
  }
  other.requestsFrom.add(me.id);
  if (db) stmt.insertRequest.run(me.id, other.id, memo);
  const frame = JSON.stringify({ type: 'relation', change: 'friend_request', username: me.username });
  for (const ws of other.sockets) sendFrame(ws, frame);
  return 'requested';
}

function relationAccept(req, body) {
  const me = requireUser(req);
  const other = byName.get(field(body, 'username').toLowerCase());
  if (!other || other === me) throw new ApiError(404, 'not_found', 'No such request.');
  // The load generator's subset: accepting makes friends, whether or not a request is pending.
  makeFriends(me, other);
  return null;
}

function groupById(body) {
  const g = groups.get(field(body, 'community_id'));
  if (!g) throw new ApiError(404, 'not_found', 'No such group.');
  return g;
}

function groupFull() {
  return new ApiError(409, 'group_full', 'This group has reached its member limit.');
}

function communityCreate(req, body) {
  const me = requireUser(req);
  const name = field(body, 'name').trim();
  const description = typeof body.description === 'string' ? body.description : '';
  if (name.length < 1 || name.length > 32 || name.includes('\n')) {
    throw new ApiError(400, 'invalid_field', 'A group name is one line of 1 to 32 characters.', 'name');
  }
  if (description.length > 200) {
    throw new ApiError(400, 'invalid_field', 'A description has at most 200 characters.', 'description');
  }
  const g = new Group(crypto.randomUUID(), name, description, me, Date.now());
  if (db) {
    db.transaction(() => {
      stmt.insertGroup.run(g.id, me.id, g.name, g.description, g.createdAt);
      stmt.insertMember.run(g.id, me.id);
    })();
  }
  g.members.add(me);
  groups.set(g.id, g);
  return g.view(me);
}

function communityJoin(req, body) {
  const me = requireUser(req);
  const g = groupById(body);
  const memo = typeof body.memo === 'string' ? body.memo : '';
  if (g.members.has(me)) throw new ApiError(409, 'already_member', 'You are already a member of this group.');
  if (g.members.size >= GROUP_MAX_MEMBERS) throw groupFull();
  g.requests.add(me);
  if (db) stmt.insertJoinRequest.run(g.id, me.id, memo);
  return 'requested';
}

function communityApprove(req, body) {
  const me = requireUser(req);
  const g = groupById(body);
  if (g.owner !== me) throw new ApiError(403, 'not_owner', 'Only the owner may do this.');
  const u = byName.get(field(body, 'username').toLowerCase());
  if (!u || !g.requests.has(u)) throw new ApiError(404, 'not_found', 'This user has not asked to join the group.');
  if (g.members.size >= GROUP_MAX_MEMBERS) throw groupFull();
  if (db) {
    db.transaction(() => {
      stmt.deleteJoinRequest.run(g.id, u.id);
      stmt.insertMember.run(g.id, u.id);
    })();
  }
  g.requests.delete(u);
  g.members.add(u);
  return null;
}

const routes = {
  '/api/v1/user/register': register,
  '/api/v1/relation/request': relationRequest,
  '/api/v1/relation/accept': relationAccept,
  '/api/v1/community/create': communityCreate,
  '/api/v1/community/join': communityJoin,
  '/api/v1/community/approve': communityApprove,
};

function reply(res, status, value) {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function onRequest(req, res) {
  const path = req.url.split('?', 1)[0];
  if (req.method === 'GET' && path === '/healthz') return reply(res, 200, { status: 'ok' });
  const route = routes[path];
  if (!route || req.method !== 'POST') {
    return reply(res, 404, { code: 'not_found', message: 'Not found.' });
  }
  const chunks = [];
  let size = 0;
  req.on('data', (c) => {
    size += c.length;
    if (size > MAX_BODY) {
      reply(res, 413, { code: 'payload_too_large', message: 'The body is too large.' });
      req.destroy();
      return;
    }
    chunks.push(c);
  });
  req.on('end', () => {
    if (size > MAX_BODY) return;
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      if (body === null || typeof body !== 'object') throw new Error('not an object');
    } catch {
      return reply(res, 400, { code: 'bad_request', message: 'The body is not a JSON object.' });
    }
    try {
      reply(res, 200, route(req, body, res));
    } catch (e) {
      if (e instanceof ApiError) {
        const out = { code: e.code, message: e.message };
        if (e.field) out.field = e.field;
        return reply(res, e.status, out);
      }
      console.error(e);
      reply(res, 500, { code: 'internal', message: 'Server fault.' });
    }
  });
}

// ---------------------------------------------------------------------------------------
// WebSocket relay.

const wss = new WebSocketServer({
  noServer: true,
  clientTracking: false,
  perMessageDeflate: false,
  maxPayload: 128 * 1024,
});
const allSockets = new Set();

// Frames sent in one turn of the event loop leave in one write per socket: the first frame
// corks the socket, and the uncork after the turn (setImmediate) writes them all at once.
const corked = [];
function uncorkAll() {
  for (const ws of corked) {
    ws._peerCorked = false;
    if (ws._socket) ws._socket.uncork();
  }
  corked.length = 0;
}

function sendFrame(ws, text) {
  if (ws.readyState !== 1) return;
  if (opts.cork && !ws._peerCorked && ws._socket) {
    ws._socket.cork();
    ws._peerCorked = true;
    if (corked.push(ws) === 1) setImmediate(uncorkAll);
  }
  ws.send(text);
  if (ws.bufferedAmount > opts.maxBuffered) ws.close(4001, 'too slow: reconnect and sync');
}

function sendError(ws, code, message, clientId) {
  const e = { type: 'error', code, message };
  if (clientId !== undefined) e.client_id = clientId;
  sendFrame(ws, JSON.stringify(e));
}

function presenceFrame(u) {
  const online = u.sockets.size > 0;
  return JSON.stringify({ type: 'presence', user: u.id, online, last_seen: online ? null : u.lastSeen });
}

function broadcastPresence(u) {
  const frame = presenceFrame(u);
  for (const fid of u.friends) {
    const f = users.get(fid);
    if (f) for (const ws of f.sockets) sendFrame(ws, frame);
  }
}

function rejectUpgrade(socket, status, code, message) {
  const body = JSON.stringify({ code, message });
  socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: application/json\r\n` +
    `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}

function onUpgrade(req, socket, head) {
  socket.on('error', () => {});
  if (req.url.split('?', 1)[0] !== '/ws') return rejectUpgrade(socket, 404, 'not_found', 'Not found.');
  const origin = req.headers.origin;
  if (origin) {
    let host;
    try { host = new URL(origin).host; } catch { host = ''; }
    if (host !== req.headers.host) return rejectUpgrade(socket, 403, 'forbidden', 'Origin not allowed.');
  }
  const user = sessionUser(req);
  if (!user) return rejectUpgrade(socket, 401, 'unauthorized', 'Log in first.');
  wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, user));
}

function onConnection(ws, user) {
  ws.user = user;
  ws.isAlive = true;
  ws.badFrames = 0;
  ws._peerCorked = false;
  allSockets.add(ws);
  const first = user.sockets.size === 0;
  user.sockets.add(ws);
  const presence = [];
  for (const fid of user.friends) {
    const f = users.get(fid);
    if (f) presence.push({ user: f.id, online: f.sockets.size > 0, last_seen: f.sockets.size > 0 ? null : f.lastSeen });
  }
  sendFrame(ws, JSON.stringify({
    type: 'ready',
    version: 1,
    me: { id: user.id, username: user.username, nickname: user.nickname, avatar: '' },
    conversations: [],
    presence,
    last_id: opts.mode === 'sqlite' ? lastId : 0,
  }));
  if (first) broadcastPresence(user);
  ws.on('pong', heartbeat);
  ws.on('message', onMessage);
  ws.on('close', onClose);
  ws.on('error', () => {});
}

function heartbeat() {
  this.isAlive = true;
}

function onClose() {
  const ws = this;
  allSockets.delete(ws);
  const u = ws.user;
  u.sockets.delete(ws);
  if (u.sockets.size === 0) {
    u.lastSeen = Date.now();
    broadcastPresence(u);
  }
}

function badFrame(ws, message) {
  sendError(ws, 'bad_frame', message);
  if (++ws.badFrames > 20) ws.close(1008, 'too many malformed frames');
}

function onMessage(data, isBinary) {
  const ws = this;
  if (isBinary) return badFrame(ws, 'Frames are JSON text.');
  if (data.length > 64 * 1024) return sendError(ws, 'frame_too_large', 'The frame is too large.');
  let msg;
  try {
    msg = JSON.parse(data);
  } catch {
    return badFrame(ws, 'The frame is not JSON.');
  }
  if (msg === null || typeof msg !== 'object' || typeof msg.type !== 'string') {
    return badFrame(ws, 'A frame is an object with a type.');
  }
  switch (msg.type) {
    case 'send': return onSend(ws, msg);
    case 'ping': {
      const nonce = Number.isInteger(msg.nonce) ? msg.nonce : null;
      return sendFrame(ws, JSON.stringify({ type: 'pong', nonce }));
    }
    default: return sendError(ws, 'unknown_type', `Unknown frame type ${msg.type}.`);
  }
}

const CLIENT_ID = /^[\x21-\x7e]{1,64}$/;
const BLANK = /^\s*$/;

function onSend(ws, msg) {
  const sender = ws.user;
  const clientId = msg.client_id;
  if (typeof clientId !== 'string') return badFrame(ws, 'send needs a client_id.');
  const to = msg.to;
  const content = msg.content;
  if (to === null || typeof to !== 'object' || content === null || typeof content !== 'object') {
    return badFrame(ws, 'send needs to and content.');
  }
  if (!CLIENT_ID.test(clientId)) return sendError(ws, 'invalid_field', 'A bad client_id.', clientId);
  const toId = to.user;
  if (typeof toId !== 'string' && typeof to.group !== 'string') return badFrame(ws, 'to names a user or a group.');
  if (content.kind !== 'text' || typeof content.text !== 'string') {
    return sendError(ws, 'invalid_field', 'Only text can be sent.', clientId);
  }
  const text = content.text;
  if (text.length === 0 || BLANK.test(text)) return sendError(ws, 'invalid_field', 'The text is empty.', clientId);
  if (text.length > 4000 && [...text].length > 4000) {
    return sendError(ws, 'message_too_long', 'A message has at most 4,000 characters.', clientId);
  }
  let target; // a User or a Group
  if (typeof toId !== 'string') {
    target = groups.get(to.group);
    if (!target || !target.members.has(sender)) {
      return sendError(ws, 'not_member', 'Only members may do this.', clientId);
    }
  } else {
    if (toId === sender.id) return sendError(ws, 'invalid_field', 'A message to oneself.', clientId);
    if (!sender.friends.has(toId)) return sendError(ws, 'not_friends', 'Only friends may do this.', clientId);
    target = users.get(toId);
    if (!target) return sendError(ws, 'not_friends', 'Only friends may do this.', clientId);
  }

  if (db) {
    pending.push({ ws, sender, target, clientId, text });
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flush);
    }
    return;
  }
  deliver(ws, sender, target, clientId, text, ++lastId, Date.now());
}

function deliver(ws, sender, target, clientId, text, id, createdAt) {
  sendFrame(ws, `{"type":"ack","client_id":${JSON.stringify(clientId)},"id":${id},"created_at":${createdAt}}`);
  const group = target instanceof Group;
  // One frame, serialized once, for every socket it goes to.
  const frame = JSON.stringify({
    type: 'message', id, client_id: clientId, from: sender.id,
    to: group ? { group: target.id } : { user: target.id }, content: { kind: 'text', text }, created_at: createdAt,
  });
  if (group) {
    // Every session of every member (the sender's other sessions too), not the sending socket.
    for (const m of target.members) for (const s of m.sockets) if (s !== ws) sendFrame(s, frame);
    return;
  }
  for (const r of target.sockets) sendFrame(r, frame);
  for (const s of sender.sockets) if (s !== ws) sendFrame(s, frame);
}

// SQLite mode: every message that arrived in this turn of the event loop, in one transaction.
let pending = [];
let flushScheduled = false;

const insertBatch = db && db.transaction((batch, createdAt) => {
  const out = new Array(batch.length);
  for (let i = 0; i < batch.length; i++) {
    const m = batch[i];
    const a = m.sender.id;
    const b = m.target.id;
    const group = m.target instanceof Group;
    const conversation = group ? `g:${b}` : a < b ? `u:${a}:${b}` : `u:${b}:${a}`;
    const row = stmt.insertMessage.get(m.clientId, a, conversation, group ? 2 : 1, b, m.text, createdAt);
    out[i] = row ? { id: row.id, created_at: row.created_at, fresh: true }
      : { ...stmt.existingMessage.get(a, m.clientId), fresh: false };
  }
  return out;
});

function flush() {
  flushScheduled = false;
  let batch = pending;
  if (batch.length > opts.maxBatch) {
    pending = batch.slice(opts.maxBatch);
    batch = batch.slice(0, opts.maxBatch);
    flushScheduled = true;
    setImmediate(flush);
  } else {
    pending = [];
  }
  let rows;
  const t0 = opts.stats ? process.hrtime.bigint() : 0n;
  try {
    rows = insertBatch(batch, Date.now());
    if (opts.stats) {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      stats.batches++;
      stats.messages += batch.length;
      stats.txMs += ms;
      if (ms > stats.txMaxMs) stats.txMaxMs = ms;
      if (batch.length > stats.maxBatch) stats.maxBatch = batch.length;
    }
  } catch (e) {
    console.error('peer-relay: insert failed:', e.message);
    for (const m of batch) sendError(m.ws, 'unavailable', 'The database failed; send again.', m.clientId);
    return;
  }
  for (let i = 0; i < batch.length; i++) {
    const m = batch[i];
    const r = rows[i];
    if (r.id > lastId) lastId = r.id;
    if (r.fresh) {
      deliver(m.ws, m.sender, m.target, m.clientId, m.text, r.id, r.created_at);
    } else {
      // A resend: the same ack, nothing delivered twice.
      sendFrame(m.ws, JSON.stringify({ type: 'ack', client_id: m.clientId, id: r.id, created_at: r.created_at }));
    }
  }
  // The batch's frames leave now rather than after the next turn's I/O.
  uncorkAll();
}

// --stats: what the writer did, and how late the event loop ran, every few seconds.
const stats = { batches: 0, messages: 0, txMs: 0, txMaxMs: 0, maxBatch: 0 };
if (opts.stats) {
  const { monitorEventLoopDelay } = require('node:perf_hooks');
  const lag = monitorEventLoopDelay({ resolution: 1 });
  lag.enable();
  setInterval(() => {
    const s = stats;
    console.log(`stats: ${s.messages} messages in ${s.batches} transactions ` +
      `(mean ${(s.messages / Math.max(1, s.batches)).toFixed(1)}, max ${s.maxBatch}), ` +
      `${s.txMs.toFixed(0)} ms in transactions (max ${s.txMaxMs.toFixed(1)} ms); ` +
      `event loop delay p50 ${(lag.percentile(50) / 1e6).toFixed(1)} ms, ` +
      `p99 ${(lag.percentile(99) / 1e6).toFixed(1)} ms, max ${(lag.max / 1e6).toFixed(1)} ms; ` +
      `${allSockets.size} sockets`);
    Object.assign(s, { batches: 0, messages: 0, txMs: 0, txMaxMs: 0, maxBatch: 0 });
    lag.reset();
  }, opts.stats * 1000).unref();
}

// Ping every socket; one that did not answer the previous ping is dropped.
const pinger = setInterval(() => {
  for (const ws of allSockets) {
    if (!ws.isAlive) {
      ws.terminate();
      continue;
    }
    ws.isAlive = false;
    ws.ping();
  }
}, Math.max(1, opts.pingSecs) * 1000);
pinger.unref();

// ---------------------------------------------------------------------------------------

const server = http.createServer(onRequest);
server.on('upgrade', onUpgrade);
server.listen(opts.port, opts.host, () => {
  const sqliteVersion = db ? ` (SQLite ${db.prepare('SELECT sqlite_version() AS v').get().v})` : '';
  console.log(`peer-relay ${opts.mode}${sqliteVersion} on http://${opts.host}:${opts.port}, ` +
    `${users.size} users, ${groups.size} groups, node ${process.version}`);
});

function shutdown() {
  server.close();
  for (const ws of allSockets) ws.terminate();
  try {
    saveState();
    if (db) db.close();
  } finally {
    process.exit(0);
  }
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
