#!/usr/bin/env bash
# The package as a user gets it: pack the tarball (prepack builds dist/), check that it holds what the
# README and proto/README.md link to, install it globally into a temporary prefix with the pinned Node
# (keytar's native module included), and run the installed command and the client library from a
# separate project. Needs the npm registry (the dependencies) and a keychain for the keychain check:
#   node scripts/with-keyring.mjs bash scripts/pack-check.sh      (or: npm run pack-check under with-keyring)
# Takes minutes (the dependencies' download and keytar's build: 231 s on a busy 2-core machine), so CI
# runs it as a step of its own (.ci/run), not inside `npm test`.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

# The pinned Node (devDependency "node", 24.x) runs npm, its lifecycle scripts and the installed command.
PINNED_NODE="$ROOT/node_modules/node/bin/node"
[ -x "$PINNED_NODE" ] || { echo "pack-check: $PINNED_NODE is missing: run npm ci first" >&2; exit 1; }
NODE_BIN="$(mktemp -d)"
ln -s "$PINNED_NODE" "$NODE_BIN/node"
export PATH="$NODE_BIN:$PATH"
WANT_NODE="$(node -p 'require("./node_modules/node/package.json").version')"
[ "$(node -p process.versions.node)" = "$WANT_NODE" ] || { echo "pack-check: node on PATH is not the pinned $WANT_NODE" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/tb-pack-XXXXXX")"
trap 'rm -rf "$WORK" "$NODE_BIN"' EXIT
fail() {
  echo "pack-check: FAIL: $*" >&2
  exit 1
}
step() { echo "--- pack-check: $*"; }

step "npm pack (prepack builds dist/)"
# Start from no dist/: the tarball must not depend on a build left over in the work tree.
rm -rf dist
npm pack --pack-destination "$WORK" >"$WORK/pack.log" 2>&1 || {
  cat "$WORK/pack.log" >&2
  fail "npm pack"
}
TARBALL="$(ls "$WORK"/tokenbroker-*.tgz)"
tar -tzf "$TARBALL" | sed 's|^package/||' | sort >"$WORK/files.txt"

step "tarball contents"
for required in package.json LICENSE README.md dist/daemon/cli/main.js dist/daemon/cli/docker-credential.js \
  dist/client/index.js dist/client/index.d.ts dist/proto/index.js dist/proto/index.d.ts \
  systemd/tokenbroker.service launchd/dev.tokenbroker.daemon.plist man/tokenbroker.1 proto/schema.json; do
  grep -qxF "$required" "$WORK/files.txt" || fail "the tarball has no $required"
done
! grep -q '\.tsbuildinfo$' "$WORK/files.txt" || fail "the tarball holds .tsbuildinfo files"
! grep -qE '^(test|node_modules)/' "$WORK/files.txt" || fail "the tarball holds tests or node_modules"
node -e '
  const p = require(process.argv[1]);
  for (const field of ["repository", "homepage", "license", "man"]) if (!p[field]) { console.error("package.json has no " + field); process.exit(1); }
' "$ROOT/package.json" || fail "package.json fields"
# Every relative link of README.md and proto/README.md resolves inside the tarball, except the ones to
# development files (tests, test config), which npmjs.com resolves against "repository".
DEV_ONLY='^(vitest\.config\.ts|test/.*)$'
for doc in README.md proto/README.md; do
  dir="$(dirname "$doc")"
  grep -oE '\]\([^)#[:space:]]+' "$doc" | sed 's/^](//' | grep -vE '^[a-z]+:' | sort -u | while read -r link; do
    target="$(node -e 'console.log(require("path").posix.normalize(process.argv[1] + "/" + process.argv[2]))' "$dir" "$link")"
    [[ "$target" =~ $DEV_ONLY ]] && continue
    grep -qxF "$target" "$WORK/files.txt" || grep -q "^$target/" "$WORK/files.txt" || fail "$doc links to $link, which is not in the tarball"
  done
done

step "npm install -g into a temporary prefix (Node $WANT_NODE)"
PREFIX="$WORK/prefix"
# node-gyp's Node headers, without nodejs.org: the pinned Node's own (its platform package ships
# include/node), else npm's configured nodedir, else a system copy (Debian's nodejs: /usr/include/node).
if [ -z "${npm_config_nodedir:-}" ]; then
  for dir in "$ROOT"/node_modules/node/node_modules/node-*; do
    if [ -f "$dir/include/node/node_api.h" ]; then export npm_config_nodedir="$dir" && break; fi
  done
fi
if [ -z "${npm_config_nodedir:-}" ] && case "$(npm config get nodedir)" in undefined | null | "") true ;; *) false ;; esac && [ -f /usr/include/node/node_api.h ]; then
  export npm_config_nodedir=/usr
fi
# keytar: its prebuilt binary is fetched from GitHub; where that is out of reach it is compiled
# (node-gyp: python3, make, a C++ compiler, libsecret-1-dev, and the Node headers of npm's "nodedir").
npm install --global --prefix "$PREFIX" --no-audit --no-fund "$TARBALL" >"$WORK/install.log" 2>&1 ||
  {
    cat "$WORK/install.log" >&2
    fail "npm install -g"
  }
TB="$PREFIX/bin/tokenbroker"
[ -x "$TB" ] || fail "the global install has no bin/tokenbroker"
INSTALLED="$PREFIX/lib/node_modules/tokenbroker"
[ -f "$INSTALLED/node_modules/keytar/build/Release/keytar.node" ] || [ -f "$PREFIX/lib/node_modules/keytar/build/Release/keytar.node" ] ||
  fail "keytar's native module was neither downloaded nor built"

# A home of its own: no config, no daemon, no service.
export HOME="$WORK/home" XDG_CONFIG_HOME="$WORK/home/.config" XDG_DATA_HOME="$WORK/home/.local/share"
export TOKENBROKER_SOCKET="$WORK/run/tokenbroker.sock"
unset TOKENBROKER_CONFIG
mkdir -p "$HOME"

step "tokenbroker --version"
VERSION="$("$TB" --version)"
[ "$VERSION" = "$(node -p 'require("./package.json").version')" ] || fail "--version printed \"$VERSION\""

step "man page and completion from the installed package"
[ -e "$PREFIX/share/man/man1/tokenbroker.1" ] || fail "npm linked no man page into $PREFIX/share/man/man1"
grep -q '^\.SS completion' "$PREFIX/share/man/man1/tokenbroker.1" || fail "the installed man page has no completion section"
"$TB" completion bash | bash -n || fail "the installed bash completion does not parse"

step "tokenbroker status (no daemon: exit 3)"
set +e
STATUS_ERR="$("$TB" status 2>&1 >/dev/null)"
STATUS_CODE=$?
set -e
[ "$STATUS_CODE" = 3 ] || fail "status exited $STATUS_CODE, expected 3 (daemon not running): $STATUS_ERR"
grep -q 'DAEMON_NOT_RUNNING' <<<"$STATUS_ERR" || fail "status said: $STATUS_ERR"
grep -q 'tokenbroker daemon' <<<"$STATUS_ERR" || fail "status does not say how to start the daemon: $STATUS_ERR"

step "tokenbroker doctor --json"
set +e
"$TB" doctor --json >"$WORK/doctor.json"
DOCTOR_CODE=$?
set -e
[ "$DOCTOR_CODE" = 0 ] || [ "$DOCTOR_CODE" = 1 ] || fail "doctor exited $DOCTOR_CODE"
node -e '
  const report = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const byId = Object.fromEntries(report.checks.map((c) => [c.id, c]));
  for (const id of ["node", "config", "socket-dir", "daemon", "keychain", "service"]) if (!byId[id]) throw new Error("doctor has no " + id + " check");
  if (byId.node.status !== "ok") throw new Error("node check: " + byId.node.detail);
  // keytar loaded and the keychain answered: the native module of the installed package works.
  if (process.env.DBUS_SESSION_BUS_ADDRESS && byId.keychain.status !== "ok") throw new Error("keychain check: " + byId.keychain.detail);
  if (/cannot be loaded|native module/i.test(byId.keychain.detail)) throw new Error("keytar did not load: " + byId.keychain.detail);
' "$WORK/doctor.json" || {
  cat "$WORK/doctor.json" >&2
  fail "doctor --json"
}

step "doctor when keytar's native module does not load: says what to install and run"
KEYTAR_NODE="$(find "$PREFIX/lib/node_modules" -path '*keytar/build/Release/keytar.node' | head -n 1)"
mv "$KEYTAR_NODE" "$KEYTAR_NODE.away"
set +e
"$TB" doctor --json >"$WORK/doctor-broken.json"
set -e
mv "$KEYTAR_NODE.away" "$KEYTAR_NODE"
node -e '
  const report = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const keychain = report.checks.find((c) => c.id === "keychain");
  if (report.ok !== false || keychain.status !== "fail") throw new Error("keychain check did not fail: " + JSON.stringify(keychain));
  if (!/keytar native module cannot be loaded/.test(keychain.detail)) throw new Error("detail: " + keychain.detail);
  if (!/npm rebuild keytar/.test(keychain.fix) || !/libsecret-1-dev/.test(keychain.fix)) throw new Error("fix: " + keychain.fix);
' "$WORK/doctor-broken.json" || {
  cat "$WORK/doctor-broken.json" >&2
  fail "doctor with a broken keytar"
}

step "a separate project: import { connect } from 'tokenbroker/client' (tsc, then node)"
APP="$WORK/app"
mkdir -p "$APP/node_modules"
ln -s "$INSTALLED" "$APP/node_modules/tokenbroker"
cat >"$APP/package.json" <<'JSON'
{ "name": "tb-pack-check-app", "private": true, "type": "module" }
JSON
cat >"$APP/tsconfig.json" <<'JSON'
{ "compilerOptions": { "module": "nodenext", "target": "es2022", "strict": true, "outDir": "out", "types": ["node"], "typeRoots": ["@TYPES@"] } }
JSON
# A Node.js project has @types/node (the client's types name NodeJS.ProcessEnv); this one borrows ours.
sed -i "s|@TYPES@|$ROOT/node_modules/@types|" "$APP/tsconfig.json"
cat >"$APP/index.ts" <<'TS'
import { connect, BrokerError, type ConnectOptions, type TokenResult } from 'tokenbroker/client';

const options: ConnectOptions = { connectTimeoutMs: 2000, clientName: 'pack-check' };
try {
  const broker = await connect(options);
  const token: TokenResult = await broker.getToken({});
  console.log(token.expiresAt);
} catch (error) {
  if (!(error instanceof BrokerError)) throw error;
  console.log(error.code);
}
TS
(cd "$APP" && "$ROOT/node_modules/.bin/tsc" -p .) || fail "the client's types do not compile in a separate project"
OUT="$(cd "$APP" && node out/index.js)"
[ "$OUT" = "DAEMON_NOT_RUNNING" ] || fail "the client from the package printed \"$OUT\", expected DAEMON_NOT_RUNNING"

KEYTAR_DIR="$(dirname "$(dirname "$(dirname "$KEYTAR_NODE")")")"
KEYTAR_HOW="$([ -d "$KEYTAR_DIR/build/Release/obj.target" ] && echo "compiled by node-gyp (nodedir ${npm_config_nodedir:-npm default})" || echo "prebuilt binary")"
step "ok: $(basename "$TARBALL"), $(wc -l <"$WORK/files.txt") files; keytar: $KEYTAR_HOW"
