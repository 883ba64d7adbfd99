// A real JsSIP user agent under Node, for tests/tests/websocket.rs (driven
// by tests/src/jssip.rs).
//
//   node jssip.mjs URL AOR [CA_PEM_PATH]
//
// URL is ws://… or wss://…; AOR e.g. sip:alice@localhost; for wss, the
// CA certificate (PEM) the server's certificate must chain to (nothing
// else is trusted). Node 20 has no global WebSocket: JsSIP gets `ws`'s,
// with the CA.
//
// It prints one JSON line per event on stdout ({"event":"connected"},
// {"event":"registered","contact":…}, {"event":"unregistered"},
// {"event":"registrationFailed","cause":…}, {"event":"disconnected"}) and
// takes commands on stdin, one per line: `unregister`, `quit`,
// `message URI TEXT` (a SIP MESSAGE: {"event":"messageSucceeded"} or
// {"event":"messageFailed","cause":…}). A MESSAGE received is printed as
// {"event":"message","from":…,"body":…} (JsSIP answers it 200). It exits
// by itself after 60 s so it never lingers.

import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import JsSIP from 'jssip';
import WebSocket from 'ws';

const [url, aor = 'sip:alice@localhost', caPath] = process.argv.slice(2);
if (!url) {
  console.error('usage: node jssip.mjs URL [AOR] [CA_PEM_PATH]');
  process.exit(2);
}
const ca = caPath ? readFileSync(caPath, 'utf8') : undefined;

function emit(event, fields = {}) {
  process.stdout.write(`${JSON.stringify({ event, ...fields })}\n`);
}

// What JsSIP's WebSocketInterface does is `new WebSocket(url, 'sip')`,
// as in a browser; the options carry the test CA.
globalThis.WebSocket = class extends WebSocket {
  constructor(address, protocols) {
    super(address, protocols, ca ? { ca } : {});
  }
};

JsSIP.debug.disable();

const socket = new JsSIP.WebSocketInterface(url);
const ua = new JsSIP.UA({
  sockets: [socket],
  uri: aor,
  register: true,
  register_expires: 120,
  session_timers: false,
  user_agent: 'kamrs-test JsSIP',
  // One try: a test that kills the server must not see reconnects.
  connection_recovery_min_interval: 30,
  connection_recovery_max_interval: 60,
});

ua.on('connected', () => emit('connected'));
ua.on('disconnected', (e) => emit('disconnected', { error: Boolean(e && e.error) }));
ua.on('registered', (e) => {
  emit('registered', {
    contact: ua.contact.uri.toString(),
    status: e.response.status_code,
    // The Contact list of the 200 as the registrar sent it.
    contacts: e.response.getHeaders('contact'),
  });
});
ua.on('unregistered', (e) => {
  emit('unregistered', { status: e && e.response ? e.response.status_code : null });
});
ua.on('registrationFailed', (e) => {
  emit('registrationFailed', {
    cause: e.cause,
    status: e.response ? e.response.status_code : null,
  });
});

// MESSAGE needs no media, so a call through the proxy can be proven with
// a real WebSocket client under Node (which has no WebRTC for INVITE).
ua.on('newMessage', (e) => {
  if (e.originator === 'remote') {
    emit('message', { from: e.request.from.uri.toString(), body: e.request.body });
  }
});

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const command = line.trim();
  if (command === 'unregister') {
    ua.unregister({ all: false });
  } else if (command.startsWith('message ')) {
    const [, uri, ...text] = command.split(' ');
    ua.sendMessage(uri, text.join(' '), {
      eventHandlers: {
        succeeded: () => emit('messageSucceeded'),
        failed: (e) => emit('messageFailed', { cause: e.cause }),
      },
    });
  } else if (command === 'quit') {
    ua.stop();
    emit('quit');
    process.exit(0);
  } else if (command) {
    emit('error', { message: `unknown command ${command}` });
  }
});
// The test closed our stdin (it ended or failed): so do we.
lines.on('close', () => process.exit(0));

setTimeout(() => {
  emit('timeout');
  process.exit(1);
}, 60_000).unref();

ua.start();
